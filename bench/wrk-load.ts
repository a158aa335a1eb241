import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { treeCpuSeconds } from './child.js'
import { CONNECTIONS, type LoadResult } from './soap-load.js'

const run = promisify(execFile)
const WARMUP_SECONDS = 2

export interface WrkOptions {
  /**
   * The mean pause of each connection between an answer and its next request, drawn at random from
   * 0 to twice this, so the connections do not send in step: a load below saturation (wrk times a
   * request from its sending, so the pause is not counted as latency).
   */
  readonly pauseMs?: number
  /** The server's process: its CPU time over the measured run is divided by the requests answered. */
  readonly pid?: number
  /** An unrecorded run before the measured one, to warm the server's compiler: 2 s unless told. */
  readonly warmupSeconds?: number
}

export interface WrkResult extends LoadResult {
  /** Requests answered in the measured run, over `seconds`. */
  readonly requests: number
  readonly seconds: number
  /** CPU time (user + system) of the process given as `pid` over the measured run. */
  readonly cpuSeconds?: number
  /** The same per request answered, in µs. */
  readonly cpuUsPerRequest?: number
}

/**
 * wrk's Lua script: the POST, then one JSON line with what we report. Latency is in µs; wrk counts
 * non-2xx answers and socket errors apart from the requests.
 */
function script(body: string, pauseMs: number | undefined): string {
  return `wrk.method = "POST"
wrk.body = ${JSON.stringify(body)}
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = '"GetTaskStatus"'
${pauseMs === undefined ? '' : `function delay() return math.random(0, ${2 * pauseMs}) end`}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"us":%d,"p99":%d,"errors":%d}\\n', summary.requests, summary.duration,
    latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))
end
`
}

/**
 * GetTaskStatus from Debian's `wrk` (C, one thread): a load generator that needs far less CPU per
 * request than autocannon, so on 2 cores the server, not the generator, is the limit. Same shape as
 * the autocannon run: 64 keep-alive connections after an unrecorded warm-up (unless told none); at
 * full speed unless `pauseMs` is given.
 * @throws when any request failed or was answered other than 2xx.
 */
export async function wrkGetTaskStatus(url: string, body: string, seconds: number, options: WrkOptions = {}): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'apubi-wrk-'))
  try {
    const path = join(dir, 'post.lua')
    writeFileSync(path, script(body, options.pauseMs))
    const args = (s: number) => ['-t1', `-c${CONNECTIONS}`, `-d${s}s`, '-s', path, url]
    const warmup = options.warmupSeconds ?? WARMUP_SECONDS
    if (warmup > 0) await run('wrk', args(warmup))
    const cpuBefore = options.pid === undefined ? 0 : treeCpuSeconds(options.pid)
    const { stdout } = await run('wrk', args(seconds))
    const cpuSeconds = options.pid === undefined ? undefined : treeCpuSeconds(options.pid) - cpuBefore
    const line = stdout.trim().split('\n').at(-1) ?? ''
    const result = JSON.parse(line) as { requests: number; us: number; p99: number; errors: number }
    if (result.errors || result.requests === 0) throw new Error(`wrk on ${url}: ${result.errors} errors of ${result.requests}:\n${stdout}`)
    return {
      requests: result.requests,
      seconds: result.us / 1e6,
      requestsPerSecond: result.requests / (result.us / 1e6),
      p99Ms: result.p99 / 1000,
      ...(cpuSeconds === undefined ? {} : { cpuSeconds, cpuUsPerRequest: (cpuSeconds / result.requests) * 1e6 }),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Two servers measured in alternation by `wrkInterleaved`: each side's runs added up. */
export interface Interleaved {
  readonly ours: WrkResult
  readonly reference: WrkResult
  /** ours ÷ reference in requests per second, per slice, from lowest to highest. */
  readonly sliceRatios: readonly number[]
}

export interface Contender {
  readonly url: string
  /** Its process, whose CPU time is counted. */
  readonly pid: number
}

/**
 * GetTaskStatus on two servers in alternation, `slices` runs of `sliceSeconds` each, in the order
 * reference, ours, ours, reference, … (a steady drift of the machine's speed favours neither), after
 * one warm-up each; each side's requests, time and CPU added up. On these shared cores a server's
 * rate moves by half from one second to the next (host contention): runs of a few seconds each
 * compare the two in different spells, one-second runs taken in turn compare them in the same ones.
 */
export async function wrkInterleaved(reference: Contender, ours: Contender, body: string, slices: number, sliceSeconds = 1): Promise<Interleaved> {
  const runs = { ours: [] as WrkResult[], reference: [] as WrkResult[] }
  for (let slice = 0; slice < slices; slice++) {
    const order = slice % 2 === 0 ? (['reference', 'ours'] as const) : (['ours', 'reference'] as const)
    for (const side of order) {
      const { url, pid } = side === 'ours' ? ours : reference
      runs[side].push(await wrkGetTaskStatus(url, body, sliceSeconds, { pid, warmupSeconds: slice === 0 ? WARMUP_SECONDS : 0 }))
    }
  }
  const sliceRatios = runs.ours.map((r, i) => r.requestsPerSecond / runs.reference[i]!.requestsPerSecond).sort((a, b) => a - b)
  return { ours: added(runs.ours), reference: added(runs.reference), sliceRatios }
}

/**
 * Runs of one server as one: requests, time and CPU summed. The p99 is the median of the runs', and
 * says little: in a one-second run, the 64 connections opening at once make most of the slowest percent.
 */
function added(runs: readonly WrkResult[]): WrkResult {
  const requests = runs.reduce((sum, r) => sum + r.requests, 0)
  const seconds = runs.reduce((sum, r) => sum + r.seconds, 0)
  const cpuSeconds = runs.reduce((sum, r) => sum + r.cpuSeconds!, 0)
  const p99s = runs.map((r) => r.p99Ms).sort((a, b) => a - b)
  return { requests, seconds, requestsPerSecond: requests / seconds, p99Ms: p99s[(p99s.length - 1) >> 1]!, cpuSeconds, cpuUsPerRequest: (cpuSeconds / requests) * 1e6 }
}
