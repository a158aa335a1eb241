// `npm run bench`: the speed and memory targets, each measured against a reference taken in
// the same run on the same machine. On 2 cores the load generator competes with the server, so only
// the ratio means anything across machines. A missed target is a result (exit 0); a measurement that
// could not be taken is a failure (exit 1), reported after the table.
// Environment: BENCH_SECONDS (per GetTaskStatus run, default 10), BENCH_FILE_MB (MiB published,
// default 1024), BENCH_ROUNDS (rounds of each comparison, the best kept, default 2), BENCH_ONLY (the
// parts to run, comma-separated).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, type TestServer } from '../test/servers/apubi-server.js'
import { peakRssMb, startChild } from './child.js'
import { ftpUrl, publishThroughServer, referenceUpload, verifySize, writeRandomFile, type FtpInfo } from './publish.js'
import { CONNECTIONS, createFinishedTask, fetchAnswer, getTaskStatusEnvelope, loadGetTaskStatus, newTextEveryTime, type LoadResult } from './soap-load.js'
import { packageOrder } from './package-order.js'
import { scaleOut } from './scale-out.js'
import { transports, type TransportRow } from './transports.js'

const seconds = positiveNumber('BENCH_SECONDS', 10)
const fileMib = positiveNumber('BENCH_FILE_MB', 1024)
const fileBytes = fileMib * (1 << 20)
const rounds = Math.ceil(positiveNumber('BENCH_ROUNDS', 2))
const fileLabel = fileMib % 1024 === 0 ? `${fileMib / 1024} GiB` : `${fileMib} MiB`
// Per request logging off, so the figure is the SOAP path's; the default level is measured as well.
const quiet = { APUBI_LOG_LEVEL: 'warn' }

type Row = TransportRow

// Every temporary file of the run, the servers' data folders included: one folder removed at the end,
// even when a server is interrupted while it starts (startServer removes its own folders only on stop).
sweepAbandonedRuns()
const work = mkdtempSync(join(tmpdir(), `apubi-bench-${process.pid}-`))
const rows: Row[] = []
const failures: string[] = []
const cleanups: Array<() => Promise<unknown>> = []
// Set once cleaning up began (a signal can arrive mid-run): nothing new starts.
let stopping = false

function log(message: string): void {
  console.error(`[bench] ${message}`)
}

function positiveNumber(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback)
  if (!(value > 0)) throw new Error(`${name} must be a positive number, not ${process.env[name]}`)
  return value
}

/** BENCH_ONLY: comma-separated names of the parts to run (GetTaskStatus, publishing, transports, scale-out, package order); default all. */
const only = process.env['BENCH_ONLY']?.split(',').map((name) => name.trim())

/** Runs one part; a part that breaks is reported and the others still run. */
async function part(name: string, run: () => Promise<void>): Promise<void> {
  if (stopping || (only && !only.includes(name))) return
  try {
    await run()
  } catch (e) {
    failures.push(`${name}: ${(e as Error).stack ?? e}`)
  }
}

/**
 * tsx SIGKILLs its child when a signal is not acknowledged within ~60 ms (an event loop busy at
 * start-up): no cleanup runs then. The next run removes what such a run left.
 */
function sweepAbandonedRuns(): void {
  const alive = (pid: number) => {
    try {
      return process.kill(pid, 0)
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM'
    }
  }
  for (const name of readdirSync(tmpdir())) {
    const pid = /^apubi-bench-(\d+)-/.exec(name)?.[1]
    if (pid !== undefined && !alive(Number(pid))) rmSync(join(tmpdir(), name), { recursive: true, force: true })
  }
}

async function cleanUp(): Promise<void> {
  stopping = true
  stopStartingServers()
  for (let fn = cleanups.pop(); fn; fn = cleanups.pop()) await fn().catch((e) => log(`cleanup: ${e}`))
}

/**
 * A server interrupted while starting has no handle yet (startServer returns it once it answers), and
 * one killed by a signal leaves startServer polling for 30 s: find our server children by pid instead.
 */
function stopStartingServers(): void {
  const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').split(' ').filter(Boolean)
  for (const pid of children) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('src/cli/index.ts')) process.kill(Number(pid), 'SIGTERM')
    } catch {
      // It exited meanwhile.
    }
  }
}

let servers = 0
/** Our server with its folders under `work`; `fileRoot` is where file:// sources may be read. */
async function apubiServer(env: Record<string, string> = {}, fileRoot?: string): Promise<TestServer> {
  if (stopping) throw new Error('stopping')
  const base = join(work, `server-${++servers}`)
  mkdirSync(join(base, 'files'), { recursive: true })
  // The compiled server, as operators run it (`npm start`): through tsx it is about 12 % slower.
  // With its default poll of the task store, not the tests' 50 ms (idle, 1.4 % of a core); a
  // LoadAsset wakes it at once either way.
  const settings = { APUBI_POLL_MS: '500', ...env }
  const server = await startServer({ env: settings, dataDir: join(base, 'data'), fileRoot: fileRoot ?? join(base, 'files'), built: true })
  cleanups.push(() => server.stop())
  return server
}

async function getTaskStatus(): Promise<void> {
  const server = await apubiServer(quiet)
  const taskId = await createFinishedTask(server)
  const body = getTaskStatusEnvelope(taskId)
  const answer = await fetchAnswer(server.url, body)
  const bare = await startChild<{ port: number }>('./bare-server.ts', [answer.bytes.toString('base64')])
  cleanups.push(() => bare.stop())
  const bareUrl = `http://127.0.0.1:${bare.info.port}/apubi`
  const bareAnswer = await fetchAnswer(bareUrl, body)
  if (!bareAnswer.bytes.equals(answer.bytes) || bareAnswer.contentType !== answer.contentType) {
    throw new Error('the bare server does not answer the same bytes as ours')
  }

  // Interleaved rounds, the faster of each side: the machine is shared, one slow moment should not decide.
  const referenceRuns: LoadResult[] = []
  const oursRuns: LoadResult[] = []
  for (let round = 1; round <= rounds; round++) {
    log(`GetTaskStatus, round ${round}/${rounds}: bare node:http, then ours (log level warn); ${answer.bytes.length} B answers, ${CONNECTIONS} connections, ${seconds} s each`)
    referenceRuns.push(await loadGetTaskStatus(bareUrl, body, seconds))
    oursRuns.push(await loadGetTaskStatus(server.url, body, seconds))
  }
  const fastest = (runs: LoadResult[]) => runs.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a))
  const [reference, ours] = [fastest(referenceRuns), fastest(oursRuns)]
  // The WFM repeats a poll's text, which the server parses once; a first poll is parsed in full.
  log(`GetTaskStatus, a new request text every time: bare node:http, then ours; ${seconds} s each`)
  const referenceNew = await loadGetTaskStatus(bareUrl, newTextEveryTime(taskId), seconds)
  const oursNew = await loadGetTaskStatus(server.url, newTextEveryTime(taskId), seconds)
  await bare.stop()
  const rss = peakRssMb(server.process.pid!)
  await server.stop()

  const info = await apubiServer()
  // The harness keeps every line the server prints; under load that is the bench's memory and CPU.
  // The lines still go through the pipe, as they would to a log collector.
  info.process.stdout?.removeAllListeners('data').resume()
  const infoBody = getTaskStatusEnvelope(await createFinishedTask(info))
  log(`GetTaskStatus, ours (log level info): ${CONNECTIONS} connections, ${seconds} s`)
  const oursInfo = await loadGetTaskStatus(info.url, infoBody, seconds)
  await info.stop()

  const perSecond = { digits: 0, target: '≥ 50 %', met: (_: number, ratio: number) => ratio >= 0.5 }
  const p99 = { digits: 1, target: '≤ 10 ms', met: (ms: number) => ms <= 10 }
  rows.push(
    { metric: 'GetTaskStatus req/s', ours: ours.requestsPerSecond, reference: reference.requestsPerSecond, ...perSecond },
    { metric: 'GetTaskStatus p99 ms', ours: ours.p99Ms, reference: reference.p99Ms, ...p99 },
    { metric: 'GetTaskStatus req/s, new text each (1 round)', ours: oursNew.requestsPerSecond, reference: referenceNew.requestsPerSecond, ...perSecond },
    { metric: 'GetTaskStatus p99 ms, new text each (1 round)', ours: oursNew.p99Ms, reference: referenceNew.p99Ms, ...p99 },
    { metric: 'GetTaskStatus req/s, log info (1 round)', ours: oursInfo.requestsPerSecond, reference: reference.requestsPerSecond, ...perSecond },
    { metric: 'GetTaskStatus p99 ms, log info (1 round)', ours: oursInfo.p99Ms, reference: reference.p99Ms, ...p99 },
    { metric: 'peak RSS MB, GetTaskStatus load', ours: rss, digits: 0, target: '' },
  )
}

async function publishing(): Promise<void> {
  const sourceDir = join(work, 'source')
  const ftpRoot = join(work, 'ftp')
  mkdirSync(sourceDir)
  mkdirSync(ftpRoot)
  const file = join(sourceDir, 'big.bin')
  log(`writing a ${fileLabel} file`)
  await writeRandomFile(file, fileMib)
  const ftp = await startChild<FtpInfo>('./ftp-server.ts', [ftpRoot, 'bench'])
  cleanups.push(() => ftp.stop())
  // Started before the first round so their peak RSS covers them all; idle, they only poll their store.
  // The second computes no digests: the reference copy computes none either.
  const server = await apubiServer(quiet, sourceDir)
  const bare = await apubiServer({ ...quiet, APUBI_CHECKSUMS: 'none' }, sourceDir)
  const mbPerSecond = (s: number) => fileBytes / 1e6 / s
  const uploaded = async (path: string) => (await verifySize(path, fileBytes), rmSync(path))
  let reference: number | undefined
  let ours: number | undefined
  let oursWithoutDigests: number | undefined
  try {
    // Interleaved rounds, fastest of each: the machine is shared, and one slow moment should not decide.
    for (let round = 1; round <= rounds; round++) {
      log(`publishing to ${ftp.info.server}, round ${round}/${rounds}: reference (basic-ftp uploadFrom a read stream), then ours (LoadAsset, GetTaskStatus every 100 ms)`)
      const referenceSeconds = await referenceUpload(ftp.info, file, 'bench/reference.bin')
      await uploaded(join(ftpRoot, 'bench', 'reference.bin'))
      reference = Math.max(reference ?? 0, mbPerSecond(referenceSeconds))
      // Generous, so a slow server is measured rather than cut off; a stuck one still ends the bench.
      const timeoutMs = Math.max(60_000, referenceSeconds * 20_000)
      const oursSeconds = await publishThroughServer(server.url, file, ftpUrl(ftp.info, 'bench/big.bin'), timeoutMs)
      await uploaded(join(ftpRoot, 'bench', 'big.bin'))
      ours = Math.max(ours ?? 0, mbPerSecond(oursSeconds))
      const withoutSeconds = await publishThroughServer(bare.url, file, ftpUrl(ftp.info, 'bench/big.bin'), timeoutMs)
      await uploaded(join(ftpRoot, 'bench', 'big.bin'))
      oursWithoutDigests = Math.max(oursWithoutDigests ?? 0, mbPerSecond(withoutSeconds))
      log(`  reference ${referenceSeconds.toFixed(2)} s, ours ${oursSeconds.toFixed(2)} s, ours without digests ${withoutSeconds.toFixed(2)} s`)
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output().slice(-4000)}`, { cause: e })
  } finally {
    const rss = ours === undefined ? undefined : peakRssMb(server.process.pid!)
    const bareRss = oursWithoutDigests === undefined ? undefined : peakRssMb(bare.process.pid!)
    rows.push(
      { metric: `publish ${fileLabel} file→ftp MB/s, MD5+SHA-256`, ours, reference, digits: 1, target: '≥ 80 %', met: (_, ratio) => ratio >= 0.8 },
      { metric: 'peak RSS MB, publishing, MD5+SHA-256', ours: rss, digits: 0, target: '≤ 200 MB', met: (mb) => mb <= 200 },
      { metric: `publish ${fileLabel} file→ftp MB/s, no digests`, ours: oursWithoutDigests, reference, digits: 1, target: '≥ 80 %', met: (_, ratio) => ratio >= 0.8 },
      { metric: 'peak RSS MB, publishing, no digests', ours: bareRss, digits: 0, target: '≤ 200 MB', met: (mb) => mb <= 200 },
    )
  }
}

function printTable(): void {
  const format = (n: number | undefined, digits: number) => (n === undefined ? '—' : n.toFixed(digits))
  const table = rows.map((r) => {
    const ratio = r.ours !== undefined && r.reference !== undefined ? r.ours / r.reference : undefined
    const met = r.met === undefined ? '' : r.ours === undefined ? 'not measured' : r.met(r.ours, ratio ?? NaN) ? 'yes' : 'NO'
    return [r.metric, format(r.ours, r.digits), format(r.reference, r.digits), ratio === undefined ? '—' : `${(ratio * 100).toFixed(0)} %`, r.target, met]
  })
  table.unshift(['metric', 'ours', 'reference', 'ratio', 'target', 'met?'])
  const widths = table[0]!.map((_, i) => Math.max(...table.map((cells) => cells[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  console.log(`\nreference: bare node:http for GetTaskStatus (${CONNECTIONS} connections, keep-alive, ${seconds} s), basic-ftp stream copy for publishing (to vsftpd when installed, else ftp-srv); best of ${rounds} interleaved rounds`)
  console.log(line(table[0]!))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const cells of table.slice(1)) console.log(line(cells))
}

// `on`, not `once`: tsx relays a signal the group already delivered, and a second one finding no
// listener would end the process before its cleanup.
let exiting: Promise<void> | undefined
process.on('SIGINT', () => void (exiting ??= cleanUp().finally(() => process.exit(130))))
process.on('SIGTERM', () => void (exiting ??= cleanUp().finally(() => process.exit(143))))
cleanups.push(async () => rmSync(work, { recursive: true, force: true }))
try {
  await part('GetTaskStatus', getTaskStatus)
  await part('publishing', publishing)
  await part('transports', () => transports({ work, rounds, fileMib, rows, cleanups, log, apubiServer: (env) => apubiServer(env) }))
  await part('scale-out', () => scaleOut({ work, seconds, rows, cleanups, log }))
  await part('package order', () => packageOrder({ work, rounds, rows, log }))
} finally {
  await cleanUp()
}
printTable()
for (const failure of failures) console.error(`\n[bench] FAILED ${failure}`)
process.exitCode = failures.length > 0 ? 1 : 0
