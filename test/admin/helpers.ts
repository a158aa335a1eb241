// What the admin, metrics and dashboard tests share: plain HTTP requests (node:http, so that Host and
// the local address can be chosen), the machine's non-loopback address, a slow HTTP origin with Basic
// auth, and a reader of the Prometheus text format.
import { mkdir } from 'node:fs/promises'
import { request } from 'node:http'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import type { TestServer } from '../servers/apubi-server.js'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { eventually, writeLargeFile } from '../e2e/helpers.js'

export interface Answer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  /** The body as JSON; undefined when it is not. */
  readonly json: any
}

export interface RequestOptions {
  readonly method?: string
  readonly token?: string
  readonly headers?: Record<string, string>
  /** Connect to this address of the machine instead of 127.0.0.1 (and from it). */
  readonly address?: string
}

/** One request to the server at `path`, answered in full. */
export function call(server: TestServer, path: string, options: RequestOptions = {}): Promise<Answer> {
  const host = options.address ?? '127.0.0.1'
  const headers: Record<string, string> = { ...(options.token && { Authorization: `Bearer ${options.token}` }), ...options.headers }
  return new Promise((resolve, reject) => {
    const req = request({ host, port: server.port, path, method: options.method ?? 'GET', headers, ...(options.address && { localAddress: options.address }) }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => {
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/** An IPv4 address of this machine that is not loopback, to be a remote client; undefined when none. */
export function nonLoopbackAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return undefined
}

/** Polls the admin API until the task satisfies `done`. */
export function taskWhen(server: TestServer, id: string, done: (task: any) => boolean, token?: string): Promise<any> {
  return eventually(async () => {
    const answer = await call(server, `/admin/api/tasks/${id}`, { ...(token && { token }) })
    return answer.status === 200 && done(answer.json) ? answer.json : undefined
  })
}

export interface SlowOrigin {
  /** `http://user:password@127.0.0.1:<proxy>/private/<name>`: through the slow link, with credentials. */
  url(name: string): string
  readonly proxy: FaultProxy
  readonly origin: HttpOrigin
  close(): Promise<void>
}

export const ORIGIN_USER = 'wfm'

/**
 * An HTTP origin serving `root`, Basic auth below `private/` with `password`, behind a link of
 * `bytesPerSecond` (every connection): a publish from it stays running long enough to be watched.
 */
export async function startSlowOrigin(root: string, password: string, bytesPerSecond: number): Promise<SlowOrigin> {
  const origin = await startHttpOrigin(root, { auth: { prefix: 'private/', user: ORIGIN_USER, password } })
  const proxy = await startFaultProxy('127.0.0.1', origin.port)
  proxy.inject({ bytesPerSecond, times: 1_000_000 })
  return {
    url: (name) => `http://${ORIGIN_USER}:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}/private/${name}`,
    proxy,
    origin,
    async close() {
      await proxy.close()
      await origin.close()
    },
  }
}

/** A file of `bytes` random bytes under `root/private/`. */
export async function privateFile(root: string, name: string, bytes: number): Promise<void> {
  await mkdir(join(root, 'private'), { recursive: true })
  await writeLargeFile(join(root, 'private', name), bytes)
}

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of a Prometheus text exposition (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, '$1')
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value
}
