import { posix } from 'node:path'
import { PassThrough, type Readable } from 'node:stream'
import { FTPError } from 'basic-ftp'
import { PublishError, type Code } from '../../errors.js'
import { REDACTED } from '../../observability/index.js'
import { ConnectionPool } from '../connection-pool.js'
import { connect, origin, TlsRefusedError } from './connect.js'
import { KnownDirs } from '../known-dirs.js'
import { isCertificateError, networkErrorCode } from '../network-errors.js'
import { hashOf } from './hash.js'
import { afterHandshake, childEntry, entryOf, forwardInto, renameReplacing, sizeOf, type Connection } from './protocol.js'
import type { Backend, BackendContext, BackendFactory, Endpoint, Entry, Features, HashAlgorithm, WriteOptions } from '../types.js'

/**
 * FTP servers through a small pool of basic-ftp clients: `ftp://` in the clear, `ftpes://` with
 * explicit TLS (AUTH TLS on the plain port), `ftps://` with implicit TLS (TLS from the first byte).
 * Paths are sent as given: relative ones start at the login directory, absolute ones at the server root.
 *
 * With TLS, the certificate is checked against Node's CAs and `context.tlsCa`, on the control and on
 * every data connection, and each data connection resumes the control connection's TLS session, as
 * servers that demand it check (vsftpd `require_ssl_reuse`, FileZilla Server): basic-ftp does both.
 * Transfers are passive, EPSV first and PASV where EPSV is refused, data sent to the control host.
 * No NOOP keeps the control connection alive during a long transfer: basic-ftp stops its control
 * timeout while data flows, servers do not count a transfer as idle time (vsftpd's
 * idle_session_timeout does not fire mid-upload: test/backends/ftps-extras.test.ts), and a NOOP
 * sent mid-transfer gets its reply mixed with the transfer's own, or is not read until the end.
 */
export const createFtpBackend: BackendFactory = (endpoint, context) => new FtpBackend(endpoint, context)

type Operation = 'stat' | 'list' | 'read' | 'write' | 'rename' | 'remove' | 'mkdir' | 'hash'

// Idle connections keep their host slots; more than a few only starve other tasks on that host.
const MAX_IDLE_CONNECTIONS = 4
// Bounds what a download buffers ahead of a slow consumer; beyond it TCP backpressure holds the server.
const READ_BUFFER_BYTES = 1 << 20

const replyCodes: Readonly<Record<number, Code>> = {
  421: 'ERR_TRANSFER', // service closing the connection
  425: 'ERR_TRANSFER', // data connection could not be opened
  426: 'ERR_TRANSFER', // transfer aborted
  530: 'ERR_AUTH',
  552: 'ERR_TRANSFER', // storage full: may pass once space is freed
  553: 'ERR_PERMISSION', // file name not allowed
}

/** Our code for a basic-ftp failure. `connecting`: it happened before the login completed. */
export function codeFor(e: unknown, op: Operation, connecting: boolean): Code {
  // Refused credentials, in effect: another attempt meets the same certificate or the same server.
  if (isCertificateError(e) || e instanceof TlsRefusedError) return 'ERR_AUTH'
  if (e instanceof FTPError) {
    // 550 is "file unavailable": absent for a lookup, refused for a creation.
    if (e.code === 550) return op === 'write' || op === 'mkdir' ? 'ERR_PERMISSION' : 'ERR_NOT_FOUND'
    return replyCodes[e.code] ?? (e.code < 500 ? 'ERR_TRANSFER' : 'ERR_INTERNAL')
  }
  // Refused, unresolvable, timed out or reset before a greeting and login: nobody serves there.
  if (connecting) return 'ERR_UNREACHABLE'
  // What remains (lost connection, timeout, a failing body stream) may pass on another attempt.
  return networkErrorCode(e) ?? 'ERR_TRANSFER'
}

class FtpBackend implements Backend {
  readonly scheme: Endpoint['scheme']
  /** Set once the server refused a rename: see `rename`. */
  private renameRefused = false
  private readonly pool: ConnectionPool<Connection>
  private readonly knownDirs = new KnownDirs()

  constructor(
    private readonly endpoint: Endpoint,
    private readonly context: BackendContext,
  ) {
    this.scheme = endpoint.scheme
    this.pool = new ConnectionPool({
      connect: (signal) => connect(endpoint, context, signal),
      isOpen: (conn) => !conn.client.closed,
      discard: (conn) => {
        conn.client.close()
        conn.release()
      },
      idleMs: context.timeoutMs,
      maxIdle: MAX_IDLE_CONNECTIONS,
    })
  }

  /**
   * RNTO replaces the target on most servers; where it refuses, `rename` deletes the target first.
   * Once a server refused to rename at all, files are best written in place: atomicRename turns false.
   */
  get features(): Features {
    return { atomicRename: !this.renameRefused, writable: true, append: true }
  }

  async stat(path: string, signal: AbortSignal): Promise<Entry> {
    return this.use('stat', path, signal, async (conn) => {
      const entry = await entryOf(conn, path)
      if (!entry) throw this.fail('ERR_NOT_FOUND', 'stat', path, 'no such file or directory')
      return entry
    })
  }

  async list(dir: string, signal: AbortSignal): Promise<Entry[]> {
    return this.use('list', dir, signal, async (conn) => {
      // Servers answer LIST of a missing path with 450, 451 or 501, and of a file with the file itself.
      const entry = await entryOf(conn, dir)
      if (!entry) throw this.fail('ERR_NOT_FOUND', 'list', dir, 'no such directory')
      if (entry.type !== 'directory') throw this.fail('ERR_NOT_A_DIRECTORY', 'list', dir, 'not a directory')
      const children = await conn.client.list(dir)
      return children.filter((f) => f.name !== '.' && f.name !== '..').map((f) => childEntry(dir, f))
    })
  }

  async read(path: string, signal: AbortSignal, offset = 0): Promise<Readable> {
    return this.download(await this.take('read', path, signal), path, offset, signal)
  }

  /** Resolves with the size SIZE reports once the server confirmed the upload. */
  async write(path: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<number> {
    // A body failing while directories are made must not crash the process; the upload reports it.
    body.on('error', () => {})
    let stored = false
    try {
      return await this.use('write', path, signal, async (conn) => {
        await this.makeDirs(conn, posix.dirname(path), 'write')
        stored = true
        const data = afterHandshake(body, conn.client.ftp)
        // APPE creates a missing file, as STOR does (RFC 959).
        await (options.append ? conn.client.appendFrom(data, path) : conn.client.uploadFrom(data, path))
        return sizeOf(conn.client, path)
      })
    } catch (e) {
      body.destroy()
      // Appending, what reached the server stays: a later attempt continues from there.
      if (stored && !options.append) await this.removeLeftover(path)
      throw e
    }
  }

  /**
   * Where the server refuses the rename itself (some origins refuse RNFR or RNTO outright, others
   * replacing a file they also refuse to delete), the file is copied through us under the final
   * name, its size checked, and `from` removed. Not atomic, so `features.atomicRename` turns false:
   * the transfer then writes the following files in place, and this copy happens once per backend.
   */
  async rename(from: string, to: string, signal: AbortSignal): Promise<void> {
    const outcome = await this.use('rename', from, signal, (conn) => renameReplacing(conn, from, to))
    if (outcome === 'missing') throw this.fail('ERR_NOT_FOUND', 'rename', from, 'no such file')
    if (outcome === 'refused') {
      this.renameRefused = true
      await this.copyInPlace(from, to, signal)
    }
  }

  async remove(path: string, signal: AbortSignal): Promise<void> {
    await this.use('remove', path, signal, async (conn) => {
      const entry = await entryOf(conn, path)
      if (!entry) throw this.fail('ERR_NOT_FOUND', 'remove', path, 'no such file or directory')
      await (entry.type === 'directory' ? conn.client.removeEmptyDir(path) : conn.client.remove(path))
      this.knownDirs.forget(path)
    })
  }

  async mkdir(path: string, signal: AbortSignal): Promise<void> {
    await this.use('mkdir', path, signal, (conn) => this.makeDirs(conn, path, 'mkdir'))
  }

  /** Through HASH, XSHA256, XMD5 or MD5, whichever FEAT lists; undefined on servers with none (most). */
  async hash(path: string, algorithm: HashAlgorithm, signal: AbortSignal): Promise<string | undefined> {
    return this.use('hash', path, signal, (conn) => hashOf(conn, path, algorithm))
  }

  async close(): Promise<void> {
    await this.pool.close()
  }

  /** Runs `work` on a pooled connection, which aborting `signal` closes; errors leave translated. */
  private async use<T>(op: Operation, path: string, signal: AbortSignal, work: (conn: Connection) => Promise<T>): Promise<T> {
    const conn = await this.take(op, path, signal)
    const stop = (): void => conn.client.close()
    signal.addEventListener('abort', stop, { once: true })
    try {
      const result = await work(conn)
      this.giveBack(conn)
      return result
    } catch (e) {
      this.giveBack(conn, e)
      throw this.translate(e, op, path, signal)
    } finally {
      signal.removeEventListener('abort', stop)
    }
  }

  private get closed(): boolean {
    return this.pool.closed
  }

  private async take(op: Operation, path: string, signal: AbortSignal): Promise<Connection> {
    try {
      return await this.pool.take(signal)
    } catch (e) {
      throw this.translate(e, op, path, signal, true)
    }
  }

  /** Reuses a connection still in a known state (after success or a mere negative reply), else closes it. */
  private giveBack(conn: Connection, error?: unknown): void {
    this.pool.giveBack(conn, error === undefined || error instanceof PublishError || (error instanceof FTPError && error.code >= 500))
  }

  /**
   * Streams RETR (after REST `offset`) into the returned Readable, once the first bytes came or the
   * file turned out empty: a missing file (550) rejects here, not in the stream later, without a
   * look before each download. The connection is pooled again once the server confirmed.
   */
  private download(conn: Connection, path: string, offset: number, signal: AbortSignal): Promise<Readable> {
    const out = new PassThrough({ highWaterMark: READ_BUFFER_BYTES })
    return new Promise((resolve, reject) => {
      let started = false
      const start = (): void => {
        started = true
        resolve(out)
      }
      const fail = (error: PublishError): void => {
        if (started) return void out.destroy(error)
        out.destroy()
        reject(error)
      }
      let settled = false
      const settle = (error?: unknown): boolean => {
        if (settled) return false
        settled = true
        signal.removeEventListener('abort', abort)
        this.giveBack(conn, error)
        return true
      }
      const abort = (): void => fail(this.translate(signal.reason, 'read', path, signal))
      signal.addEventListener('abort', abort, { once: true })
      // Closed before the server confirmed: it may still be sending, so the connection cannot be reused.
      out.once('close', () => settle(new Error('read stream closed early')))
      conn.client.downloadTo(forwardInto(out, conn.client.ftp, start), path, offset).then(
        () => {
          if (!settle()) return
          if (!started) start()
          out.end()
        },
        (e: unknown) => {
          if (!settle(e)) return
          if (started) return fail(this.translate(e, 'read', path, signal))
          this.refusal(e, path, signal).then(fail, () => fail(this.translate(e, 'read', path, signal)))
        },
      )
    })
  }

  /**
   * Why the server refused a download before its first byte. Servers answer RETR of a missing file
   * or of a directory with 550 or 551 (ftp-srv): a look at the path tells which, only then.
   */
  private async refusal(e: unknown, path: string, signal: AbortSignal): Promise<PublishError> {
    if (!(e instanceof FTPError) || e.code < 500 || signal.aborted) return this.translate(e, 'read', path, signal)
    const entry = await this.use('read', path, signal, (conn) => entryOf(conn, path))
    if (entry?.type === 'file') return this.translate(e, 'read', path, signal)
    return this.fail('ERR_NOT_FOUND', 'read', path, entry ? 'not a file' : 'no such file', e)
  }

  /** MKD for each missing level, top down. Never CWD: a pooled client must keep its working directory. */
  private async makeDirs(conn: Connection, dir: string, op: Operation): Promise<void> {
    if (dir === '.' || dir === '/' || this.knownDirs.has(dir)) return
    await this.makeDir(conn, dir, op)
    this.knownDirs.add(dir)
  }

  private async makeDir(conn: Connection, dir: string, op: Operation): Promise<void> {
    const entry = await entryOf(conn, dir)
    if (entry?.type === 'directory') return
    // Without MLST, a folder made by a parallel upload between our CWD and SIZE probes looks like a
    // file (ftp-srv answers SIZE for folders): look once more before calling it one.
    if (entry && (await entryOf(conn, dir))?.type === 'directory') return
    if (entry) throw this.fail('ERR_NOT_A_DIRECTORY', op, dir, 'a file is in the way')
    await this.makeDirs(conn, posix.dirname(dir), op)
    try {
      await conn.client.send(`MKD ${await conn.client.protectWhitespace(dir)}`)
    } catch (e) {
      // Another connection (a parallel write) may have made it since we looked.
      if ((await entryOf(conn, dir))?.type !== 'directory') throw e
    }
  }

  /** `rename` for a server that will not rename: copy through us, check the size, remove `from`. */
  private async copyInPlace(from: string, to: string, signal: AbortSignal): Promise<void> {
    const { size } = await this.stat(from, signal)
    await this.write(to, await this.read(from, signal), signal)
    const written = await this.stat(to, signal)
    if (written.size !== size) throw this.fail('ERR_VERIFY', 'rename', to, `copied in place for want of a rename: ${written.size} bytes, ${size} expected`)
    await this.remove(from, signal)
  }

  /** Best effort, under a signal of its own: the task's signal may be why the upload stopped. */
  private async removeLeftover(path: string): Promise<void> {
    const signal = AbortSignal.timeout(this.context.timeoutMs)
    await this.use('remove', path, signal, ({ client }) => client.remove(path)).catch(() => {})
  }

  private translate(e: unknown, op: Operation, path: string, signal: AbortSignal, connecting = false): PublishError {
    if (e instanceof PublishError) return e
    if (signal.aborted || this.closed) return this.fail('ERR_SHUTDOWN', op, path, signal.aborted ? 'aborted' : 'backend closed', e)
    const why = e instanceof Error ? e.message : String(e)
    return this.fail(codeFor(e, op, connecting), op, path, isCertificateError(e) ? `TLS certificate not trusted: ${why}` : why, e)
  }

  /** An error naming the operation, the URL without credentials, and why; the password never shows. */
  private fail(code: Code, op: Operation, path: string, why: string, cause?: unknown): PublishError {
    const { password } = this.endpoint
    const reason = password ? why.split(password).join(REDACTED) : why
    // RFC 1738: %2F marks a path from the server root, as src/transfer/locate.ts reads it back.
    const urlPath = path.startsWith('/') ? `%2F${path.slice(1)}` : path
    return new PublishError(code, `${op} ${origin(this.endpoint)}/${urlPath}: ${reason}`, { cause })
  }
}
