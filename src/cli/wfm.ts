import { AdminClient, ApubiClient, ApubiFault, type ClientCredentials } from '../client/index.js'
import { redact } from '../observability/index.js'
import { progressBar } from './progress-bar.js'

/** The commands that act as the WFM: they work against any APUBI server. */
export interface WfmFlags {
  readonly url: string
  readonly user?: string
  readonly password?: string
  readonly auth?: ClientCredentials['scheme']
  readonly wait?: boolean
  readonly interval?: string
  /** With --wait: a progress bar on stderr (default: when stderr is a terminal). */
  readonly progress?: boolean
  /** The admin token the progress bar may need from our own server. */
  readonly token?: string
}

/**
 * The client for `--url` and the credentials: a user and password written into the URL
 * (`http://wfm:secret@host/apubi`, percent-encoded as URLs are) are sent as --auth says, Basic by
 * default, and win over --user and --password; fetch would refuse the URL with them in it.
 */
function clientOf({ url, user, password, auth = 'basic' }: WfmFlags): ApubiClient {
  const endpoint = new URL(url)
  if (endpoint.username || endpoint.password) {
    const inUrl = { user: decodeURIComponent(endpoint.username), password: decodeURIComponent(endpoint.password), scheme: auth }
    endpoint.username = ''
    endpoint.password = ''
    return new ApubiClient(endpoint.href, inUrl)
  }
  return new ApubiClient(url, user !== undefined && password !== undefined ? { user, password, scheme: auth } : undefined)
}

export async function load(source: string, destination: string, flags: WfmFlags): Promise<number> {
  const client = clientOf(flags)
  return report(client, () => client.loadAsset(source, destination), flags)
}

export async function purge(destination: string, flags: WfmFlags): Promise<number> {
  const client = clientOf(flags)
  return report(client, () => client.purgeAsset(destination), flags)
}

export async function status(taskId: string, flags: WfmFlags): Promise<number> {
  return guarded(async () => {
    const result = await clientOf(flags).getTaskStatus(taskId)
    print(result.status, result.destinationAsset)
    return result.status === 'FAILED' ? 1 : 0
  })
}

async function report(client: ApubiClient, submit: () => Promise<string>, flags: WfmFlags): Promise<number> {
  return guarded(async () => {
    const taskId = await submit()
    process.stdout.write(`${taskId}\n`)
    if (!flags.wait) return 0
    const bar = (flags.progress ?? process.stderr.isTTY) ? progressBar(flags.url, flags.token, process.stderr) : undefined
    const result = await client.waitFor(taskId, Number(flags.interval ?? 1000), bar && (() => bar.show(taskId)))
    bar?.end()
    print(result.status, result.destinationAsset)
    if (result.status === 'SUCCESS') return 0
    process.stderr.write(`${await failureReason(client.url, flags.token, taskId)}\n`)
    return 1
  })
}

/**
 * Why a task failed, from this server's admin API; APUBI itself says only FAILED, and other servers
 * (or ours without the admin token it asks for) have no such API: then where to look.
 */
async function failureReason(url: string, token: string | undefined, taskId: string): Promise<string> {
  try {
    const { lastError } = await new AdminClient(url, token).task(taskId)
    if (lastError) return redact(`reason: ${lastError.code} ${lastError.message}`)
  } catch {
    // Not our server, or not for us: say where to look instead.
  }
  return `reason: not available here; see the server's log for task ${taskId} (on apubi-server: apubi task ${taskId}, with --token when it asks for one)`
}

function print(status: string, destination?: string): void {
  process.stdout.write(destination === undefined ? `${status}\n` : `${status} ${redact(destination)}\n`)
}

/** Exit codes: 0 success, 1 task FAILED, 2 fault, 3 server unreachable. */
async function guarded(work: () => Promise<number>): Promise<number> {
  try {
    return await work()
  } catch (e) {
    if (e instanceof ApubiFault) {
      process.stderr.write(`fault (HTTP ${e.httpStatus}): ${redact(e.message)}\n`)
      return 2
    }
    const cause = (e as Error).cause instanceof Error ? ` (${((e as Error).cause as Error).message})` : ''
    process.stderr.write(redact(`cannot reach the server: ${(e as Error).message}${cause}\n`))
    return 3
  }
}
