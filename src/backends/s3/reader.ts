import { Readable } from 'node:stream'
import type { PublishError } from '../../errors.js'

/** What an ObjectReader needs from its backend. */
export interface ObjectSource {
  /** The object again from `position` to its end, pinned to the version first read (S3: If-Match). */
  reopen(position: number): Promise<Readable>
  /** The backend's translation of a failure. */
  fail(e: unknown): PublishError
}

// Bounds what a download buffers ahead of a slow consumer; beyond it TCP backpressure holds the server.
const READ_BUFFER_BYTES = 1 << 20
/** Failures after which the rest of the object is worth asking for again. */
const RESUMABLE = new Set(['ERR_TRANSFER', 'ERR_UNREACHABLE'])

/**
 * An object's bytes from `start` to `end`, from an HTTP response body. A body that breaks after it
 * delivered bytes (its socket idled out while our consumer paused, or was reset) is reopened at the
 * current position, as rclone's ReOpen does (fs/operations/reopen.go); one that breaks before
 * delivering anything fails the stream, so a dead store cannot keep it reopening.
 */
export class ObjectReader extends Readable {
  private body: Readable | undefined
  private position: number
  private progressed = false
  /** The consumer asked for more and has not been refused by backpressure since. */
  private wanted = false
  /** The body broke; the next demand reopens it. */
  private broken = false

  constructor(
    body: Readable,
    start: number,
    private readonly end: number,
    private readonly source: ObjectSource,
  ) {
    super({ highWaterMark: READ_BUFFER_BYTES })
    this.position = start
    this.attach(body)
  }

  override _read(): void {
    this.wanted = true
    if (this.broken) this.reopen()
    else this.body?.resume()
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.body?.destroy()
    this.body = undefined
    done(error)
  }

  private attach(body: Readable): void {
    this.body = body
    this.progressed = false
    body.on('data', (chunk: Buffer) => {
      this.position += chunk.length
      this.progressed = true
      if (!this.push(chunk)) {
        this.wanted = false
        body.pause()
      }
    })
    body.once('end', () => {
      if (this.position === this.end) this.push(null)
      else this.broke(body, Object.assign(new Error(`body ended at byte ${this.position} of ${this.end}`), { code: 'ECONNRESET' }))
    })
    body.on('error', (e) => this.broke(body, e))
  }

  private broke(body: Readable, e: Error): void {
    if (body !== this.body || this.destroyed) return
    this.body = undefined
    body.removeAllListeners('data')
    body.destroy()
    const error = this.source.fail(e)
    if (!this.progressed || !RESUMABLE.has(error.code)) return void this.destroy(error)
    this.broken = true
    // A consumer that paused gets the reopened body once it asks for more, not before: reopening
    // at once would only idle out again.
    if (this.wanted) this.reopen()
  }

  private reopen(): void {
    this.broken = false
    this.source.reopen(this.position).then(
      (body) => (this.destroyed ? body.destroy() : this.attach(body)),
      (e: unknown) => this.destroy(this.source.fail(e)),
    )
  }
}
