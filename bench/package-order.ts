// Ordering a package's publish (every file first, manifests tier by tier, then read back) must not cost
// throughput: a 2,000-file HLS package published file→file with and without it, side by side, in
// interleaved rounds, the best of each kept. In process, so that only the publish is timed.
import { randomUUID } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createHostLimiter } from '../src/backends/host-limiter.js'
import { parseLocation, publish, type TransferOptions } from '../src/transfer/index.js'
import { verifyCopy, writeHlsPackage } from './hls-package.js'
import type { TransportRow } from './transports.js'

export interface PackageOrderBench {
  readonly work: string
  readonly rounds: number
  readonly rows: TransportRow[]
  readonly log: (message: string) => void
}

export async function packageOrder({ work, rounds, rows, log }: PackageOrderBench): Promise<void> {
  const files = Number(process.env['BENCH_PACKAGE_FILES'] ?? 2000)
  const source = join(work, 'order-source')
  mkdirSync(source, { recursive: true })
  log(`package order: writing a ${files}-file HLS package`)
  const expected = await writeHlsPackage(source, files)
  const options = (manifestExtensions: string[]): TransferOptions => ({
    backends: { hosts: createHostLimiter(8), timeoutMs: 30_000, ssh: { knownHostsFile: '/nonexistent', hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} } },
    credentials: (endpoint) => endpoint,
    // No digests: they would only dilute what ordering costs.
    checksums: [],
    parallelFiles: 4,
    connectionsPerHost: 8,
    manifestExtensions,
  })
  const best = { ordered: Infinity, unordered: Infinity }
  for (let round = 0; round < rounds; round++) {
    // Which goes first alternates: the second of a round finds the disk's write-back further along.
    for (const mode of round % 2 === 0 ? (['unordered', 'ordered'] as const) : (['ordered', 'unordered'] as const)) {
      const target = join(work, `order-${randomUUID()}`)
      const job = { taskId: randomUUID(), signal: new AbortController().signal, onProgress: () => {} }
      const started = performance.now()
      const result = await publish(parseLocation(`${pathToFileURL(source).href}/`), parseLocation(`${pathToFileURL(target).href}/`), job, options(mode === 'ordered' ? ['m3u8', 'mpd'] : []))
      const seconds = (performance.now() - started) / 1000
      if ((mode === 'ordered') !== (result.package !== undefined)) throw new Error(`the ${mode} publish ${result.package ? 'did' : 'did not'} verify the package`)
      await verifyCopy(target, expected)
      rmSync(target, { recursive: true, force: true })
      best[mode] = Math.min(best[mode], seconds)
      log(`package order: round ${round + 1}, ${mode}: ${seconds.toFixed(2)} s`)
    }
  }
  rmSync(source, { recursive: true, force: true })
  rows.push({
    metric: `publish ${files.toLocaleString('en')}-file package file→file s, manifests last + read back`,
    ours: best.ordered,
    reference: best.unordered,
    digits: 2,
    target: '≤ 105 %',
    met: (_, ratio) => ratio <= 1.05,
  })
}
