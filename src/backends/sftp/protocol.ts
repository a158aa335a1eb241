import type { Socket } from 'node:net'
import { Readable, Writable } from 'node:stream'
import type { Client, SFTPWrapper, Stats } from 'ssh2'
import type { Entry } from '../types.js'

// SFTP requests and streams the backend needs beyond ssh2's own API. ssh2's createReadStream and
// createWriteStream keep one request in flight, which makes the throughput a function of the round
// trip; these keep several, as OpenSSH's `sftp` does (64 requests of 32 KiB).
// Measured on loopback (2 vCPU, OpenSSH 9.2, 256 MiB file): 48 requests of 32 KiB read at 90–350 MiB/s,
// 6 of 255 KiB at 370–740 MiB/s and write at 370–620 MiB/s; OpenSSH's own `sftp get` reads at 330–375.

/** One logged-in SSH connection with its SFTP channel, and the host slot it holds until it is closed. */
export interface Session {
  readonly client: Client
  /** The TCP connection under `client`. */
  readonly socket: Socket
  readonly sftp: SFTPWrapper
  readonly release: () => void
  /** Set once the connection is gone or given up: the session must never carry a request again. */
  closed: boolean
  /** The server offers posix-rename@openssh.com (a rename that replaces the target), until it refuses one. */
  posixRename: boolean
  /** Requests awaiting a reply: ssh2 leaves a request sent on an already closed channel hanging. */
  readonly pending: Set<(e: Error) => void>
  /** SftpWriter's request buffer, kept for the next write on the session (one at a time). */
  requestBuffer?: Buffer
  /** Run once no request awaits a reply any more (see `closeWhenSettled`). */
  whenSettled?: () => void
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

// Requests as large as the server takes (OpenSSH: 255 KiB): 2 MiB take 8 requests instead of 64,
// and Node's cost is per request. ssh2 splits a larger one into parts sent one after the other.
const MAX_REQUEST_BYTES = 255 * 1024
// What every server takes; used where ssh2 does not tell the server's limit. Below ssh2's own
// default (34,000-byte packets): ssh2 never splits a request, and copies it whole before `write` returns.
const FALLBACK_REQUEST_BYTES = 30 * 1024
// Below ssh2's 2 MiB channel window, so that the server never waits for a window adjustment; on a
// 20 ms round trip it still carries 75 MiB/s per session.
const BYTES_IN_FLIGHT = 1536 * 1024

/**
 * Request size and count for a session. ssh2 1.17 (pinned) keeps the server's limits, from its
 * limits@openssh.com reply or assumed for OpenSSH, in private fields; without them, 32 KiB requests.
 */
function requestPlan(sftp: SFTPWrapper, kind: 'read' | 'write'): { bytes: number; inFlight: number } {
  const limits = sftp as unknown as { _maxReadLen?: unknown; _maxWriteLen?: unknown }
  const limit = kind === 'read' ? limits._maxReadLen : limits._maxWriteLen
  const bytes = typeof limit === 'number' && limit > 0 ? Math.min(limit, MAX_REQUEST_BYTES) : FALLBACK_REQUEST_BYTES
  return { bytes, inFlight: Math.max(2, Math.floor(BYTES_IN_FLIGHT / bytes)) }
}

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
      settled(session)
    }
    session.pending.add(fail)
    try {
      send((err, value) => {
        if (!session.pending.delete(fail)) return // already failed with the connection
        if (err) reject(err)
        else resolve(value as T)
        settled(session)
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

/**
 * Closes the session once the requests awaiting a reply have theirs, then runs `then`: a session
 * goes back to the pool with a rename in flight (see the backend's `rename`), and the pool may
 * retire it before the reply comes.
 */
export function closeWhenSettled(session: Session, why: Error, then: () => void): void {
  session.whenSettled = () => {
    closeSession(session, why)
    then()
  }
  settled(session)
}

function settled(session: Session): void {
  if (session.pending.size > 0 || !session.whenSettled) return
  const run = session.whenSettled
  session.whenSettled = undefined
  run()
}

export function entryOf(path: string, stats: Stats): Entry {
  return stats.isDirectory() ? { path, type: 'directory', size: 0 } : { path, type: 'file', size: stats.size }
}

export function statOf(s: Session, remote: string): Promise<Stats> {
  return call<Stats>(s, (cb) => s.sftp.stat(remote, cb))
}

/** A catch handler turning "no such file" into `value`; any other error passes. */
export function ifMissing<T>(value: T): (e: unknown) => T {
  return (e) => {
    if (sftpStatus(e) === STATUS.NO_SUCH_FILE) return value
    throw e
  }
}

/**
 * posix-rename@openssh.com where offered: it replaces `to` in one step. Plain SSH_FXP_RENAME refuses
 * an existing target (draft-ietf-secsh-filexfer-02 §6.5): then the target is removed and the rename
 * tried once more.
 */
export async function renameReplacing(s: Session, from: string, to: string): Promise<void> {
  if (s.posixRename) {
    try {
      return await call(s, (cb) => s.sftp.ext_openssh_rename(from, to, cb))
    } catch (e) {
      // ssh2 throws, without a status, for an extension the server did not announce.
      const status = sftpStatus(e)
      if (s.closed || (status !== undefined && status !== STATUS.OP_UNSUPPORTED)) throw e
      s.posixRename = false
    }
  }
  try {
    await call(s, (cb) => s.sftp.rename(from, to, cb))
  } catch (e) {
    if (sftpStatus(e) !== STATUS.FAILURE) throw e // NO_SUCH_FILE: `from` is missing, `to` stays untouched
    await call(s, (cb) => s.sftp.unlink(to, cb)).catch(() => {
      throw e // nothing to replace: the rename failed for another reason
    })
    await call(s, (cb) => s.sftp.rename(from, to, cb))
  }
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
  private readonly plan: { bytes: number; inFlight: number }
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
    this.plan = requestPlan(session.sftp, 'read')
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
    while (this.wanted && !this.atEnd && this.slots.length < this.plan.inFlight) {
      const slot: Slot = { position: this.next, length: this.plan.bytes, parts: [], received: 0, done: false }
      this.next += this.plan.bytes
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
 * Writes to an open remote file from `position` on, with several requests in flight. Chunks are
 * gathered into requests as large as the server takes, each sent in one system call: Node's cost
 * is per request and per write to the socket, not per byte. A chunk is accepted while fewer
 * requests are in flight than allowed; `end` resolves once every write is confirmed and the handle
 * is closed, with the file's size then in `size`; `onSent` runs as soon as the last write, fstat
 * and close are sent. Destroying it closes the handle too.
 */
export class SftpWriter extends Writable {
  private readonly plan: { bytes: number; inFlight: number }
  private inFlight = 0
  private failure: Error | undefined
  private blocked: ((error?: Error | null) => void) | undefined
  private drained: (() => void) | undefined
  private open = true
  /**
   * The next request, filled from the chunks accepted: less than one request's worth waits here.
   * One buffer serves every request of every write on the session, as ssh2 copies a request into
   * its packet before `write` returns. A buffer per request, or per file, lives until its reply
   * and then past a young-generation collection: each costs a full collection in the end.
   */
  private readonly request: Buffer
  private filled = 0
  /** The file's size as the server reported it just before the close. */
  size: number | undefined

  constructor(
    private readonly session: Session,
    private readonly handle: Buffer,
    private position: number,
    private readonly translate: (e: unknown) => Error,
    highWaterMark: number,
    private readonly onSent: () => void = () => {},
  ) {
    super({ highWaterMark })
    this.plan = requestPlan(session.sftp, 'write')
    if (session.requestBuffer?.length !== this.plan.bytes) session.requestBuffer = Buffer.allocUnsafe(this.plan.bytes)
    this.request = session.requestBuffer
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, next: (error?: Error | null) => void): void {
    if (this.failure) return next(this.failure)
    for (let copied = 0; copied < chunk.length; ) {
      const length = Math.min(chunk.length - copied, this.request.length - this.filled)
      chunk.copy(this.request, this.filled, copied, copied + length)
      this.filled += length
      copied += length
      if (this.filled === this.request.length) this.send()
    }
    if (this.inFlight < this.plan.inFlight) next()
    else this.blocked = next
  }

  override _final(done: (error?: Error | null) => void): void {
    if (this.failure) return done(this.failure)
    // The last writes, fstat and close leave together, in one system call, without waiting for the
    // writes' replies: one round trip for all, where waiting cost two. OpenSSH answers a session's
    // requests in order, so the size is the one after every write. A write that failed still fails
    // the upload (below), and only a whole upload is renamed to its final name by the caller.
    const { sftp, socket } = this.session
    socket.cork()
    if (this.filled > 0) this.send()
    this.open = false
    const stats = call<Stats>(this.session, (cb) => sftp.fstat(this.handle, cb))
    const closed = call(this.session, (cb) => sftp.close(this.handle, cb))
    socket.uncork()
    this.onSent()
    const ended = Promise.all([stats, closed])
    ended.catch(() => {}) // awaited below, once the writes are in
    this.whenDrained(() => {
      if (this.failure) return done(this.failure)
      ended.then(
        ([{ size }]) => {
          this.size = size
          done()
        },
        (e: unknown) => done(this.translate(e)), // some servers report a full disk only at the close
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

  /** Sends the request filled so far. */
  private send(): void {
    const length = this.filled
    const position = this.position
    this.position += length
    this.filled = 0
    this.inFlight++
    // ssh2 writes a request's SSH packets (32 KiB each) one by one: corked, they leave in one writev.
    this.session.socket.cork()
    const written = call(this.session, (cb) => this.session.sftp.write(this.handle, this.request, 0, length, position, cb))
    this.session.socket.uncork()
    written.then(
      () => this.settled(),
      (e: unknown) => {
        this.failure ??= this.translate(e)
        this.settled()
      },
    )
  }

  private settled(): void {
    this.inFlight--
    if (this.blocked && (this.failure || this.inFlight < this.plan.inFlight)) {
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
