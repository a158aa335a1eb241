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
parentPort.on('message', ({ id, algorithms, ring, segments, end }) => {
  let stream = open.get(id)
  if (!stream) open.set(id, (stream = { ring, hashes: algorithms.map((a) => [a, createHash(a)]) }))
  if (segments) {
    let acked = 0
    for (const [offset, length] of segments) {
      const bytes = new Uint8Array(stream.ring, offset, length)
      for (const [, hash] of stream.hashes) hash.update(bytes)
      acked += length
    }
    parentPort.postMessage({ id, acked })
  }
  if (end) {
    open.delete(id)
    parentPort.postMessage({ id, digests: Object.fromEntries(stream.hashes.map(([a, hash]) => [a, hash.digest('hex')])) })
  }
})
`

/**
 * Each stream hands its bytes over through a ring in shared memory of this size, and waits when the
 * hashing thread is that far behind: memory stays bounded, and no chunk is copied into a message
 * (per-message copies left ~100 MB of garbage per GiB, measured).
 */
const RING_BYTES = 2 << 20
/** Rings kept for reuse: about the files hashed at once (tasks × parallel files). */
const MAX_FREE_RINGS = 16

type Listener = (message: { acked?: number; digests?: Digests; error?: string }) => void

/** One hashing thread for the process, started on first use and never keeping the process alive. */
class DigestThread {
  private worker: Worker | undefined
  private readonly listeners = new Map<number, Listener>()
  private readonly freeRings: SharedArrayBuffer[] = []
  private nextId = 0

  open(algorithms: readonly HashAlgorithm[], listener: Listener): { post: (segments: Array<[number, number]> | undefined, end: boolean) => void; ring: Uint8Array; close: () => void } {
    const worker = this.start()
    const id = this.nextId++
    // Rings are reused: fresh ones per file were freed only when the thread's GC ran, which is rarely
    // (2,000 small files took the process past 1 GB, measured).
    const ring = this.freeRings.pop() ?? new SharedArrayBuffer(RING_BYTES)
    let first = true
    this.listeners.set(id, listener)
    if (this.listeners.size === 1) worker.ref()
    return {
      ring: new Uint8Array(ring),
      post: (segments, end) => {
        worker.postMessage({ id, ...(first && { algorithms, ring }), segments, end })
        first = false
      },
      // Called on the thread's last message for the stream: it reads the ring no more.
      close: () => {
        this.listeners.delete(id)
        if (this.freeRings.length < MAX_FREE_RINGS) this.freeRings.push(ring)
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
  private head = 0
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
        const go = this.waiting
        this.waiting = undefined
        go?.()
        return
      }
      this.channel.close()
      if (message.error !== undefined) reject(new Error(`hashing failed: ${message.error}`))
      else resolve(message.digests ?? {})
    })
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.share(chunk, 0, () => done(null, chunk))
  }

  /** Copies `chunk` from `from` into the ring as space frees up, then calls `then`. */
  private share(chunk: Buffer, from: number, then: () => void): void {
    while (from < chunk.length) {
      const free = RING_BYTES - this.inFlight
      if (free === 0) {
        this.waiting = () => this.share(chunk, from, then)
        return
      }
      const length = Math.min(free, chunk.length - from, RING_BYTES - this.head)
      this.channel.ring.set(chunk.subarray(from, from + length), this.head)
      this.channel.post([[this.head, length]], false)
      this.inFlight += length
      this.head = (this.head + length) % RING_BYTES
      from += length
    }
    then()
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
