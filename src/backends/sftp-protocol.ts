import { Readable, Writable } from 'node:stream'
import type { Client, SFTPWrapper } from 'ssh2'

// SFTP requests and streams the backend needs beyond ssh2's own API. ssh2's createReadStream and
// createWriteStream keep one request in flight, which makes the throughput a function of the round
// trip; these keep several, as OpenSSH's `sftp` does (64 requests of 32 KiB).

/** One logged-in SSH connection with its SFTP channel, and the host slot it holds until it is closed. */
export interface Session {
  readonly client: Client
  readonly sftp: SFTPWrapper
  readonly release: () => void
  /** Set once the connection is gone or given up: the session must never carry a request again. */
  closed: boolean
  /** The server offers posix-rename@openssh.com (a rename that replaces the target), until it refuses one. */
  posixRename: boolean
  /** Requests awaiting a reply: ssh2 leaves a request sent on an already closed channel hanging. */
  readonly pending: Set<(e: Error) => void>
  idleTimer?: NodeJS.Timeout
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7) that ssh2 puts on an error as `code`. */
export const STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const

// Below every server's limit (ssh2 assumes 34,000 bytes for servers other than OpenSSH, which takes
// 256 KiB), so that no request is split into sequential parts by ssh2.
const REQUEST_BYTES = Number(process.env.REQ ?? 32) * 1024
// 2 MiB in flight: enough to fill a 1 Gbit/s link at 16 ms round trip, yet within ssh2's 2 MiB channel window.
const REQUESTS_IN_FLIGHT = Number(process.env.INFLIGHT ?? 64)

/** The SFTP status of an error from `call`; undefined for a lost connection or a local failure. */
export function sftpStatus(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | undefined)?.code
  return typeof code === 'number' ? code : undefined
}

/** One SFTP request as a promise, rejected at once when the session is (or gets) closed. */
export function call<T = void>(session: Session, send: (done: (err: Error | undefined | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (session.closed) return reject(new Error('connection closed'))
    const fail = (e: Error): void => {
      session.pending.delete(fail)
      reject(e)
    }
    session.pending.add(fail)
    try {
      send((err, value) => {
        if (!session.pending.delete(fail)) return // already failed with the connection
        if (err) reject(err)
        else resolve(value as T)
      })
    } catch (e) {
      fail(e as Error) // ssh2 throws for a request the server did not offer
    }
  })
}

/** Marks the session unusable, fails what awaits a reply, and closes the connection. Idempotent. */
export function closeSession(session: Session, why: Error): void {
  session.closed = true
  for (const fail of [...session.pending]) fail(why)
  session.client.destroy()
}

interface Slot {
  readonly position: number
  readonly length: number
  readonly parts: Buffer[]
  received: number
  done: boolean
}

/**
 * The bytes of an open remote file from `position` to its end, read with several requests in flight
 * and delivered in order. No more are asked for while the consumer does not read. The handle is
 * closed when the stream ends or is destroyed, then `onClosed` runs (with the error, if any).
 */
export class SftpReader extends Readable {
  private readonly slots: Slot[] = []
  private next: number
  private atEnd = false
  private wanted = false

  constructor(
    private readonly session: Session,
    private readonly handle: Buffer,
    position: number,
    private readonly translate: (e: unknown) => Error,
    private readonly onClosed: (error: Error | null) => void,
    highWaterMark: number,
  ) {
    super({ highWaterMark })
    this.next = position
  }

  override _read(): void {
    this.wanted = true
    this.ask()
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // The close reply comes after those of the reads still in flight: the session is clean again then.
    void call(this.session, (cb) => this.session.sftp.close(this.handle, cb))
      .catch(() => {})
      .then(() => {
        this.onClosed(error)
        done(error)
      })
  }

  private ask(): void {
    while (this.wanted && !this.atEnd && this.slots.length < REQUESTS_IN_FLIGHT) {
      const slot: Slot = { position: this.next, length: REQUEST_BYTES, parts: [], received: 0, done: false }
      this.next += REQUEST_BYTES
      this.slots.push(slot)
      this.request(slot)
    }
  }

  /** Asks for what the slot still lacks: servers may answer a READ with fewer bytes than asked. */
  private request(slot: Slot): void {
    const wanted = slot.length - slot.received
    call<Buffer>(this.session, (cb) =>
      this.session.sftp.read(this.handle, Buffer.allocUnsafe(wanted), 0, wanted, slot.position + slot.received, (err, bytes, buffer) =>
        err ? cb(err) : cb(undefined, buffer.subarray(0, bytes)),
      ),
    ).then(
      (data) => {
        if (this.destroyed) return
        if (data.length === 0) {
          // End of file (ssh2 reports the EOF status as 0 bytes): later slots lie beyond it.
          this.atEnd = true
          slot.done = true
        } else {
          slot.parts.push(data)
          slot.received += data.length
          if (slot.received < slot.length) return this.request(slot)
          slot.done = true
        }
        this.deliver()
      },
      (e: unknown) => {
        if (!this.destroyed) this.destroy(this.translate(e))
      },
    )
  }

  /** Pushes the finished slots at the head, in file order; ends after the slot that met the end. */
  private deliver(): void {
    while (this.slots[0]?.done) {
      const slot = this.slots.shift()!
      if (slot.received > 0) this.wanted = this.push(slot.parts.length === 1 ? slot.parts[0] : Buffer.concat(slot.parts))
      if (slot.received < slot.length) {
        this.slots.length = 0
        this.push(null)
        return
      }
    }
    this.ask()
  }
}

/**
 * Writes to an open remote file from `position` on, with several requests in flight. A chunk is
 * accepted while fewer are in flight than allowed; `end` resolves once every write is confirmed and
 * the handle is closed. Destroying it closes the handle too.
 */
export class SftpWriter extends Writable {
  private inFlight = 0
  private failure: Error | undefined
  private blocked: ((error?: Error | null) => void) | undefined
  private drained: (() => void) | undefined
  private open = true

  constructor(
    private readonly session: Session,
    private readonly handle: Buffer,
    private position: number,
    private readonly translate: (e: unknown) => Error,
    highWaterMark: number,
  ) {
    super({ highWaterMark })
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, next: (error?: Error | null) => void): void {
    if (this.failure) return next(this.failure)
    for (let offset = 0; offset < chunk.length; offset += REQUEST_BYTES) {
      const length = Math.min(REQUEST_BYTES, chunk.length - offset)
      this.send(chunk, offset, length, this.position)
      this.position += length
    }
    if (this.inFlight < REQUESTS_IN_FLIGHT) next()
    else this.blocked = next
  }

  override _final(done: (error?: Error | null) => void): void {
    this.whenDrained(() => {
      if (this.failure) return done(this.failure)
      this.open = false
      call(this.session, (cb) => this.session.sftp.close(this.handle, cb)).then(
        () => done(),
        (e: unknown) => done(this.translate(e)), // some servers report a full disk only here
      )
    })
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (!this.open) return done(error)
    this.open = false
    void call(this.session, (cb) => this.session.sftp.close(this.handle, cb))
      .catch(() => {})
      .then(() => done(error))
  }

  private send(chunk: Buffer, offset: number, length: number, position: number): void {
    this.inFlight++
    call(this.session, (cb) => this.session.sftp.write(this.handle, chunk, offset, length, position, cb)).then(
      () => this.settled(),
      (e: unknown) => {
        this.failure ??= this.translate(e)
        this.settled()
      },
    )
  }

  private settled(): void {
    this.inFlight--
    if (this.blocked && (this.failure || this.inFlight < REQUESTS_IN_FLIGHT)) {
      const next = this.blocked
      this.blocked = undefined
      next(this.failure)
    }
    if (this.inFlight === 0 && this.drained) {
      const drained = this.drained
      this.drained = undefined
      drained()
    }
  }

  private whenDrained(then: () => void): void {
    if (this.inFlight === 0) then()
    else this.drained = then
  }
}
