import { readFileSync, writeFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import type { ClientCredentials } from '../client/index.js'
import { Endpoint, renderJunit, renderTable, runChecks, simulate, type Asset, type CheckResult, type EndpointOptions, type SimulationProgress } from '../conformance/index.js'
import { redact } from '../observability/index.js'

/** Flags both commands share: who we are to the server, as the client's, plus TLS trust and an mTLS certificate. */
interface ConnectionFlags {
  readonly user?: string
  readonly password?: string
  readonly auth: ClientCredentials['scheme']
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
}

interface CheckFlags extends ConnectionFlags {
  readonly source?: string
  readonly destination?: string
  readonly directory?: string
  readonly directoryDestination?: string
  readonly hls?: string
  readonly hlsDestination?: string
  readonly interval: string
  readonly timeout: string
  readonly junit?: string
  readonly json?: boolean
}

interface SimulateFlags extends ConnectionFlags {
  readonly source?: string
  readonly destination?: string
  readonly taskIds?: string
  readonly concurrency: string
  readonly interval: string
  readonly count?: string
  readonly duration?: string
  readonly taskTimeout: string
  readonly purge?: boolean
  readonly progress?: boolean
}

/** A mistake in the command line: said on stderr, exit 2, nothing sent. */
class UsageError extends Error {}

/** Adds `apubi check` and `apubi simulate` to the program. */
export function addConformanceCommands(program: Command): void {
  connection(program.command('check <url>').description('conformance run against any APUBI endpoint: read-only unless --source/--destination are given'))
    .option('--source <url>', 'SourceAssetUrl of a test file: runs LoadAsset, resubmission, polling, PurgeAsset and a second purge')
    .option('--destination <path>', 'DestinationAsset for --source')
    .option('--directory <url>', 'also publish and purge a directory (its URL ends with /)')
    .option('--directory-destination <path>', 'DestinationAsset for --directory', 'apubi-check/directory/')
    .option('--hls <url>', 'also publish and purge an HLS package (its master playlist over HTTP(S), or its folder ending with /)')
    .option('--hls-destination <path>', 'DestinationAsset for --hls', 'apubi-check/hls/')
    .option('--interval <ms>', 'GetTaskStatus polling interval', '1000')
    .option('--timeout <s>', 'how long a task may stay IN_PROGRESS before the check fails', '300')
    .option('--junit <file>', 'also write the results as JUnit XML')
    .option('--json', 'print the results as JSON instead of a table')
    .action(async (url: string, flags: CheckFlags) => {
      process.exitCode = await guarded(() => check(url, flags))
    })

  connection(program.command('simulate <url>').description('WFM load simulation: concurrent publishes (or GetTaskStatus on --task-ids) polled at the WFM\'s interval'))
    .option('--source <url>', 'SourceAssetUrl every simulated publish reads')
    .option('--destination <path>', 'DestinationAsset; {n} becomes the task\'s number (1, 2, …)')
    .option('--task-ids <ids>', 'instead: only GetTaskStatus, on these comma-separated TaskIds (or @file, one a line)')
    .option('--concurrency <n>', 'tasks (or pollers) at a time', '10')
    .option('--interval <ms>', 'GetTaskStatus polling interval of each task: set the WFM\'s', '5000')
    .option('--count <n>', 'tasks to publish (with --task-ids: GetTaskStatus requests); default --concurrency, or the number of ids')
    .option('--duration <s>', 'start no new work after this many seconds')
    .option('--task-timeout <s>', 'give up polling a task after this many seconds', '3600')
    .option('--purge', 'purge each published asset after its SUCCESS, polled the same way')
    .option('--progress', 'a progress line on stderr (default: on a terminal)')
    .option('--no-progress', 'no progress line')
    .action(async (url: string, flags: SimulateFlags) => {
      process.exitCode = await guarded(() => simulateCommand(url, flags))
    })
}

function connection(command: Command): Command {
  return command
    .addOption(new Option('--user <user>', 'user, when the server requires authentication').env('APUBI_SOAP_USER'))
    .addOption(new Option('--password <password>', 'password of --user (better: the variable)').env('APUBI_SOAP_PASSWORD'))
    .addOption(new Option('--auth <scheme>', 'how to send them: HTTP Basic, or a WS-Security UsernameToken').choices(['basic', 'digest', 'text']).default('basic'))
    .option('--ca <file>', 'PEM file of the CA to trust for an https:// endpoint, besides the system\'s')
    .option('--cert <file>', 'PEM client certificate, for an endpoint that requires one (mTLS)')
    .option('--key <file>', 'PEM private key of --cert')
}

async function check(url: string, flags: CheckFlags): Promise<number> {
  const asset = (source: string | undefined, destination: string | undefined, flag: string): Asset | undefined => {
    if (source === undefined) return undefined
    if (!destination) throw new UsageError(`${flag} needs a destination`)
    return { source, destination }
  }
  if (flags.destination !== undefined && flags.source === undefined) throw new UsageError('--destination needs --source')
  const plan = {
    file: asset(flags.source, flags.destination, '--source'),
    directory: asset(flags.directory, flags.directoryDestination, '--directory'),
    hls: asset(flags.hls, flags.hlsDestination, '--hls'),
    intervalMs: positive(flags.interval, '--interval'),
    timeoutMs: positive(flags.timeout, '--timeout') * 1000,
  }
  const endpoint = new Endpoint(endpointOptions(url, flags))
  const live = !flags.json && process.stderr.isTTY
  try {
    const results = await runChecks(endpoint, plan, live ? (r) => process.stderr.write(`\r${r.outcome.toUpperCase().padEnd(4)} ${r.id}\u001b[K`) : undefined)
    if (live) process.stderr.write('\r\u001b[K')
    const shownUrl = redact(endpoint.options.url)
    if (flags.junit) writeFileSync(flags.junit, renderJunit(results, shownUrl))
    process.stdout.write(`${flags.json ? JSON.stringify(checkJson(results, shownUrl), null, 2) : renderTable(results)}\n`)
    return results.some((r) => r.outcome === 'fail') ? 1 : 0
  } finally {
    endpoint.close()
  }
}

function checkJson(results: readonly CheckResult[], url: string) {
  const count = (outcome: CheckResult['outcome']) => results.filter((r) => r.outcome === outcome).length
  return { url, passed: count('fail') === 0, summary: { pass: count('pass'), fail: count('fail'), warn: count('warn'), skip: count('skip') }, checks: results }
}

async function simulateCommand(url: string, flags: SimulateFlags): Promise<number> {
  const taskIds = flags.taskIds === undefined ? undefined : readTaskIds(flags.taskIds)
  if (taskIds && flags.source !== undefined) throw new UsageError('give either --source and --destination, or --task-ids')
  if (!taskIds && (flags.source === undefined || flags.destination === undefined)) throw new UsageError('give --source and --destination, or --task-ids')
  const endpoint = new Endpoint(endpointOptions(url, flags))
  const showProgress = flags.progress ?? process.stderr.isTTY
  try {
    const report = await simulate(
      endpoint,
      {
        concurrency: positive(flags.concurrency, '--concurrency'),
        intervalMs: positive(flags.interval, '--interval'),
        ...(flags.count !== undefined && { count: positive(flags.count, '--count') }),
        ...(flags.duration !== undefined && { durationMs: positive(flags.duration, '--duration') * 1000 }),
        taskTimeoutMs: positive(flags.taskTimeout, '--task-timeout') * 1000,
        ...(taskIds ? { taskIds } : { publish: { source: flags.source!, destination: flags.destination!, purge: flags.purge === true } }),
      },
      showProgress ? (p) => process.stderr.write(`\r${progressLine(p)}\u001b[K`) : undefined,
    )
    if (showProgress) process.stderr.write('\n')
    process.stdout.write(`${redact(JSON.stringify({ url: endpoint.options.url, ...report }, null, 2))}\n`)
    return 0
  } finally {
    endpoint.close()
  }
}

function progressLine(p: SimulationProgress): string {
  return (
    `${p.elapsedSeconds.toFixed(0)} s  ${p.requests} requests (${p.requestsPerSecond}/s)  ` +
    `tasks ${p.tasks.started} started, ${p.tasks.succeeded} SUCCESS, ${p.tasks.failed} FAILED  ` +
    `${p.faults} faults, ${p.httpErrors} HTTP errors, ${p.networkErrors} without answer`
  )
}

function readTaskIds(value: string): string[] {
  let text = value
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8')
    } catch (e) {
      throw new UsageError(`--task-ids ${value}: ${(e as Error).message}`)
    }
  }
  const ids = text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean)
  if (ids.length === 0) throw new UsageError('--task-ids holds no TaskId')
  return ids
}

/** Credentials from the flags, else from the URL's user:password (sent as Basic, and never printed). */
function endpointOptions(url: string, flags: ConnectionFlags): EndpointOptions {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(`${redact(url)} is not a URL: give the SOAP endpoint, e.g. https://host:8443/apubi`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`${redact(url)}: the endpoint is http:// or https://`)
  const fromUrl = parsed.username ? { user: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) } : undefined
  parsed.username = ''
  parsed.password = ''
  const user = flags.user ?? fromUrl?.user
  const password = flags.user !== undefined ? flags.password : fromUrl?.password
  if (user !== undefined && password === undefined) throw new UsageError('--user needs --password (or APUBI_SOAP_PASSWORD)')
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError('--cert and --key go together')
  const tls = { ...(flags.ca && { ca: pem(flags.ca, '--ca') }), ...(flags.cert && { cert: pem(flags.cert, '--cert') }), ...(flags.key && { key: pem(flags.key, '--key') }) }
  return {
    url: parsed.href,
    ...(user !== undefined && password !== undefined && { credentials: { user, password, scheme: flags.auth } }),
    ...(Object.keys(tls).length > 0 && { tls }),
  }
}

function pem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (e) {
    throw new UsageError(`${flag} ${file}: ${(e as Error).message}`)
  }
}

function positive(value: string, flag: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} ${value}: give a whole number above 0`)
  return n
}

async function guarded(work: () => Promise<number>): Promise<number> {
  try {
    return await work()
  } catch (e) {
    process.stderr.write(`${redact((e as Error).message)}\n`)
    return e instanceof UsageError ? 2 : 3
  }
}
