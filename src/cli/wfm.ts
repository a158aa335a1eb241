import { ApubiClient, ApubiFault } from '../client/index.js'
import { redact } from '../observability/index.js'

/** The commands that act as the WFM: they work against any APUBI server. */
export interface WfmFlags {
  readonly url: string
  readonly wait?: boolean
  readonly interval?: string
}

export async function load(source: string, destination: string, flags: WfmFlags): Promise<number> {
  const client = new ApubiClient(flags.url)
  return report(client, () => client.loadAsset(source, destination), flags)
}

export async function purge(destination: string, flags: WfmFlags): Promise<number> {
  const client = new ApubiClient(flags.url)
  return report(client, () => client.purgeAsset(destination), flags)
}

export async function status(taskId: string, flags: WfmFlags): Promise<number> {
  return guarded(async () => {
    const result = await new ApubiClient(flags.url).getTaskStatus(taskId)
    print(result.status, result.destinationAsset)
    return result.status === 'FAILED' ? 1 : 0
  })
}

async function report(client: ApubiClient, submit: () => Promise<string>, flags: WfmFlags): Promise<number> {
  return guarded(async () => {
    const taskId = await submit()
    process.stdout.write(`${taskId}\n`)
    if (!flags.wait) return 0
    const result = await client.waitFor(taskId, Number(flags.interval ?? 1000))
    print(result.status, result.destinationAsset)
    return result.status === 'SUCCESS' ? 0 : 1
  })
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
    process.stderr.write(`cannot reach the server: ${redact((e as Error).message)}${(e as Error).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}\n`)
    return 3
  }
}
