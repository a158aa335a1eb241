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
}

export interface WrkResult extends LoadResult {
  /** CPU time (user + system) of the process given as `pid` per request answered, in µs. */
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
 * the autocannon run: 64 keep-alive connections after an unrecorded warm-up; at full speed unless
 * `pauseMs` is given.
 * @throws when any request failed or was answered other than 2xx.
 */
export async function wrkGetTaskStatus(url: string, body: string, seconds: number, options: WrkOptions = {}): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'apubi-wrk-'))
  try {
    const path = join(dir, 'post.lua')
    writeFileSync(path, script(body, options.pauseMs))
    const args = (s: number) => ['-t1', `-c${CONNECTIONS}`, `-d${s}s`, '-s', path, url]
    await run('wrk', args(WARMUP_SECONDS))
    const cpuBefore = options.pid === undefined ? 0 : treeCpuSeconds(options.pid)
    const { stdout } = await run('wrk', args(seconds))
    const cpuSeconds = options.pid === undefined ? undefined : treeCpuSeconds(options.pid) - cpuBefore
    const line = stdout.trim().split('\n').at(-1) ?? ''
    const result = JSON.parse(line) as { requests: number; us: number; p99: number; errors: number }
    if (result.errors || result.requests === 0) throw new Error(`wrk on ${url}: ${result.errors} errors of ${result.requests}:\n${stdout}`)
    return {
      requestsPerSecond: result.requests / (result.us / 1e6),
      p99Ms: result.p99 / 1000,
      ...(cpuSeconds === undefined ? {} : { cpuUsPerRequest: (cpuSeconds / result.requests) * 1e6 }),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
