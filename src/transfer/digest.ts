import { Transform, type TransformCallback } from 'node:stream'
import { Worker } from 'node:worker_threads'

import type { HashAlgorithm } from '../backends/index.js'

/** Lower-case hex digests, for the algorithms asked for. */
export type Digests = Partial<Record<HashAlgorithm, string>>

// MD5 and SHA-256 together run at about 600 MB/s on one core: inline, they would cap a copy below what
// loopback FTP reaches. A worker thread hashes on the other core while this one moves the bytes.
const workerSource = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const open = new Map()
parentPort.on('message', ({ id, algorithms, chunk, end }) => {
  let hashes = open.get(id)
  if (!hashes) open.set(id, (hashes = algorithms.map((a) => [a, createHash(a)])))
  if (chunk) {
    for (const [, hash] of hashes) hash.update(chunk)
    parentPort.postMessage({ id, acked: chunk.length })
  }
  if (end) {
    open.delete(id)
    parentPort.postMessage({ id, digests: Object.fromEntries(hashes.map(([a, hash]) => [a, hash.digest('hex')])) })
  }
})
`

/** Bytes a stream may have in flight to the hashing thread before it waits: memory stays bounded. */
const IN_FLIGHT_BYTES = 2 << 20

type Listener = (message: { acked?: number; digests?: Digests; error?: string }) => void

/** One hashing thread for the process, started on first use and never keeping the process alive. */
class DigestThread {
  private worker: Worker | undefined
  private readonly listeners = new Map<number, Listener>()
  private nextId = 0

  open(algorithms: readonly HashAlgorithm[], listener: Listener): { id: number; post: (chunk: Buffer | undefined, end: boolean) => void; close: () => void } {
    const worker = this.start()
    const id = this.nextId++
    this.listeners.set(id, listener)
    if (this.listeners.size === 1) worker.ref()
    return {
      id,
      post: (chunk, end) => worker.postMessage({ id, algorithms, chunk, end }),
      close: () => {
        this.listeners.delete(id)
        if (this.listeners.size === 0) worker.unref()
      },
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(workerSource, { eval: true })
    worker.on('message', (message: Parameters<Listener>[0] & { id: number }) => this.listeners.get(message.id)?.(message))
    worker.on('error', (e) => {
      for (const [id, listener] of this.listeners) {
        this.listeners.delete(id)
        listener({ error: e.message })
      }
      this.worker = undefined
    })
    worker.unref()
    this.worker = worker
    return worker
  }
}

const thread = new DigestThread()

/**
 * A pass-through stream that computes digests (MD5, SHA-256) of everything that flows through it,
 * in a worker thread. `digests` resolves once the stream has ended.
 */
export class DigestStream extends Transform {
  bytes = 0
  readonly digests: Promise<Digests>
  private inFlight = 0
  private waiting: (() => void) | undefined
  private readonly channel: ReturnType<DigestThread['open']>

  constructor(algorithms: readonly HashAlgorithm[]) {
    super()
    let resolve!: (d: Digests) => void
    let reject!: (e: Error) => void
    this.digests = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    this.digests.catch(() => {}) // a destroyed stream's digests are never awaited
    this.channel = thread.open(algorithms, (message) => {
      if (message.acked !== undefined) {
        this.inFlight -= message.acked
        if (this.inFlight <= IN_FLIGHT_BYTES && this.waiting) {
          const go = this.waiting
          this.waiting = undefined
          go()
        }
        return
      }
      this.channel.close()
      if (message.error !== undefined) reject(new Error(`hashing failed: ${message.error}`))
      else resolve(message.digests ?? {})
    })
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.inFlight += chunk.length
    this.channel.post(chunk, false)
    if (this.inFlight <= IN_FLIGHT_BYTES) return done(null, chunk)
    this.waiting = () => done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    this.channel.post(undefined, true)
    done()
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    if (!this.writableFinished) {
      this.channel.post(undefined, true) // frees the thread's state for this stream
    }
    done(error)
  }
}
