import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { Worker } from 'node:worker_threads'

import type { HashAlgorithm } from '../backends/index.js'

/** Lower-case hex digests, for the algorithms asked for. */
export type Digests = Partial<Record<HashAlgorithm, string>>

// MD5 runs at about 850 MB/s and SHA-256 at about 2 GB/s on one core here: inline, or one after the
// other on one thread (600 MB/s), they would cap a copy below what loopback FTP reaches. Each
// algorithm has a thread of its own, and they read the same bytes while this thread moves them on.

/**
 * How many nice levels below the server the hashing threads run. A small file's digests are needed
 * only for its record, which the next file's copy does not wait for; a large file's hold the copy
 * back once the ring is full. At 5, 2,000-file packages published 6–14 % sooner (FTP→SFTP, S3→FTP,
 * medians of 6 rounds on 2 shared cores) and a 1 GiB file as soon (median); at 10, the 1 GiB file
 * took up to half as long again.
 */
const HASHING_NICE = 5

const workerSource = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
// Below the thread that moves the bytes, which the copy waits on: where CPU is short, the copy
// goes first. On Linux the nice value is this thread's alone; lowering it needs no privilege, and a
// system that refuses still hashes.
const os = require('node:os')
try {
  os.setPriority(0, Math.min(19, os.getPriority(0) + ${HASHING_NICE}))
} catch {}
const open = new Map()
parentPort.on('message', ({ id, algorithm, ring, segments, end }) => {
  let stream = open.get(id)
  if (!stream) open.set(id, (stream = { ring, hash: createHash(algorithm) }))
  if (segments) {
    let acked = 0
    for (const [offset, length] of segments) {
      stream.hash.update(new Uint8Array(stream.ring, offset, length))
      acked += length
    }
    if (!end) parentPort.postMessage({ id, acked })
  }
  if (end) {
    open.delete(id)
    parentPort.postMessage({ id, digest: stream.hash.digest('hex') })
  }
})
`

/**
 * Each stream hands its bytes over through a ring in shared memory of this size, and waits when a
 * hashing thread is that far behind: memory stays bounded, and no chunk is copied into a message
 * (per-message copies left ~100 MB of garbage per GiB, measured).
 */
const RING_BYTES = 2 << 20
/**
 * Bytes put in the ring before the threads are told: a message costs the same for 1 KiB as for
 * 1 MiB, and a small file then takes one message per thread, with its end.
 */
const POST_BYTES = RING_BYTES / 4
/** Rings kept for reuse: about the files hashed at once (tasks × parallel files). */
const MAX_FREE_RINGS = 16
// Rings are reused: fresh ones per file were freed only when the threads' GC ran, which is rarely
// (2,000 small files took the process past 1 GB, measured).
const freeRings: SharedArrayBuffer[] = []

/**
 * How many streams may have passed all their bytes on while the threads still hash them, each holding
 * its ring. A copy moves on to its next file without waiting for the last one's digests; where the
 * threads fell behind, each next file took a fresh ring, to thousands (2,000 files hashed alone: 4 GB
 * of address space), all of it for V8's collector to free. Past this many, a stream ends only once
 * one of them is hashed: the copy waits for the hashing, which needs nothing else to go on, so
 * nothing deadlocks.
 */
const MAX_HASHING_BEHIND = 8
let hashingBehind = 0
const waitingToEnd: Array<() => void> = []

type Message = { acked?: number; digest?: string; error?: string }
type Listener = (message: Message) => void
/** One stream's conversation with one hashing thread. */
interface Channel {
  post(segments: Array<[number, number]> | undefined, end: boolean): void
  close(): void
}

/** The hashing thread of one algorithm, started on first use and never keeping the process alive. */
class DigestThread {
  private worker: Worker | undefined
  private readonly listeners = new Map<number, Listener>()
  private nextId = 0

  constructor(private readonly algorithm: HashAlgorithm) {}

  open(ring: SharedArrayBuffer, listener: Listener): Channel {
    const worker = this.start()
    const id = this.nextId++
    let first = true
    this.listeners.set(id, listener)
    if (this.listeners.size === 1) worker.ref()
    return {
      post: (segments, end) => {
        worker.postMessage({ id, ...(first && { algorithm: this.algorithm, ring }), segments, end })
        first = false
      },
      close: () => {
        this.listeners.delete(id)
        if (this.listeners.size === 0) worker.unref()
      },
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(workerSource, { eval: true })
    worker.on('message', (message: Message & { id: number }) => this.listeners.get(message.id)?.(message))
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

const threads = new Map<HashAlgorithm, DigestThread>()
const threadOf = (algorithm: HashAlgorithm): DigestThread => {
  let thread = threads.get(algorithm)
  if (!thread) threads.set(algorithm, (thread = new DigestThread(algorithm)))
  return thread
}

/**
 * A pass-through stream that computes digests (MD5, SHA-256) of everything that flows through it,
 * in worker threads. `digests` resolves once the stream has ended.
 */
export class DigestStream extends Transform {
  bytes = 0
  readonly digests: Promise<Digests>
  private readonly ring: SharedArrayBuffer
  private readonly view: Uint8Array
  /** All its bytes passed on, not all hashed yet: counted in `hashingBehind`. */
  private behind = false
  /** Bytes each thread has not hashed yet; the ring's free space is what the slowest leaves. */
  private readonly inFlight: number[]
  private head = 0
  private waiting: (() => void) | undefined
  private readonly channels: Channel[]
  /** Segments of the ring filled since the threads were last told. */
  private unposted: Array<[number, number]> = []
  private unpostedBytes = 0

  constructor(algorithms: readonly HashAlgorithm[]) {
    super()
    this.ring = freeRings.pop() ?? new SharedArrayBuffer(RING_BYTES)
    this.view = new Uint8Array(this.ring)
    this.inFlight = algorithms.map(() => 0)
    let open = algorithms.length
    const digests: Digests = {}
    let resolve!: (d: Digests) => void
    let reject!: (e: Error) => void
    this.digests = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    this.digests.catch(() => {}) // a destroyed stream's digests are never awaited
    // Called on each thread's last message for the stream: once all are in, the ring is read no more.
    const closed = (): void => {
      if (--open > 0) return
      if (freeRings.length < MAX_FREE_RINGS) freeRings.push(this.ring)
      if (this.behind) {
        hashingBehind--
        while (waitingToEnd.length > 0 && hashingBehind <= MAX_HASHING_BEHIND) waitingToEnd.shift()!()
      }
      resolve(digests)
    }
    this.channels = algorithms.map((algorithm, i) => {
      const channel: Channel = threadOf(algorithm).open(this.ring, (message) => {
        if (message.acked !== undefined) {
          this.inFlight[i]! -= message.acked
          const go = this.waiting
          this.waiting = undefined
          go?.()
          return
        }
        channel.close()
        if (message.error !== undefined) reject(new Error(`hashing failed: ${message.error}`))
        else digests[algorithm] = message.digest!
        closed()
      })
      return channel
    })
    if (open === 0) resolve(digests)
  }

  /** Hashes `prefix` as if it had flowed through first, without passing it on: bytes sent earlier. */
  async absorb(prefix: Readable): Promise<void> {
    for await (const chunk of prefix as AsyncIterable<Buffer>) {
      this.bytes += chunk.length
      await new Promise<void>((resolve) => this.share(chunk, 0, resolve))
    }
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.share(chunk, 0, () => done(null, chunk))
  }

  /** Copies `chunk` from `from` into the ring as space frees up, then calls `then`. */
  private share(chunk: Buffer, from: number, then: () => void): void {
    while (from < chunk.length) {
      const free = RING_BYTES - Math.max(...this.inFlight)
      if (free === 0) {
        this.post() // the threads free space only once told of what fills it
        this.waiting = () => this.share(chunk, from, then)
        return
      }
      const length = Math.min(free, chunk.length - from, RING_BYTES - this.head)
      this.view.set(chunk.subarray(from, from + length), this.head)
      this.unposted.push([this.head, length])
      this.unpostedBytes += length
      for (let i = 0; i < this.inFlight.length; i++) this.inFlight[i]! += length
      this.head = (this.head + length) % RING_BYTES
      from += length
    }
    if (this.unpostedBytes >= POST_BYTES) this.post()
    then()
  }

  private post(end = false): void {
    if (this.unposted.length === 0 && !end) return
    for (const channel of this.channels) channel.post(this.unposted.length > 0 ? this.unposted : undefined, end)
    this.unposted = []
    this.unpostedBytes = 0
  }

  override _flush(done: TransformCallback): void {
    this.post(true)
    if (this.channels.length === 0) return done()
    this.behind = true
    if (++hashingBehind <= MAX_HASHING_BEHIND) return done()
    waitingToEnd.push(() => this.destroyed || done())
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    if (!this.writableFinished) {
      for (const channel of this.channels) channel.post(undefined, true) // frees the threads' state for this stream
    }
    done(error)
  }
}
