import { Socket } from 'node:net'
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Client, type FileEntryWithStats, type ServerHostKeyAlgorithm, type SFTPWrapper, type Stats } from 'ssh2'
import { PublishError, type Code } from '../../errors.js'
import { REDACTED } from '../../observability/index.js'
import { checkedAddress, unbracketed } from '../checked-lookup.js'
import { call, closeSession, closeWhenSettled, entryOf, ifMissing, renameReplacing, SftpReader, SftpWriter, sftpStatus, statOf, STATUS, type Session } from './protocol.js'
import { ConnectionPool } from '../connection-pool.js'
import { networkErrorCode } from '../network-errors.js'
import { hostKeyCheck } from './known-hosts.js'
import { KnownDirs } from '../known-dirs.js'
import type { Backend, BackendContext, BackendFactory, Endpoint, Entry, WriteOptions } from '../types.js'

/**
 * SFTP servers (`sftp://user@host:port/path`) through a small pool of SSH sessions, logged in with
 * the endpoint's password or private key once the server's host key passed the known_hosts check.
 *
 * Paths read as curl reads them: `sftp://host/srv/media` is `/srv/media` on the server and
 * `sftp://host/~/media` is `media` in the login directory. URL parsing hands us `srv/media` and
 * `~/media`, so a path is taken from the server's root unless it starts with `~/`.
 */
export const createSftpBackend: BackendFactory = (endpoint, context) => new SftpBackend(endpoint, context)

type Operation = 'stat' | 'list' | 'read' | 'write' | 'rename' | 'remove' | 'mkdir'

// Idle sessions keep their host slots; more than a few only starve other tasks on that host.
const MAX_IDLE_SESSIONS = 4
// What a download buffers ahead of a slow consumer, besides the requests in flight (protocol.ts).
const READ_BUFFER_BYTES = 1 << 20
// What an upload accepts from its source before the source has to wait for the server.
const WRITE_BUFFER_BYTES = 1 << 20
// Keepalives unanswered for this many intervals of `timeoutMs` mean the server is gone, even mid-transfer.
const KEEPALIVE_COUNT_MAX = 3

/** The server path of a backend path: `~/x` is `x` in the login directory, anything else is from `/`. */
export function remotePath(path: string): string {
  if (path === '~' || path === '~/') return '.'
  if (path.startsWith('~/')) return path.slice(2)
  if (path.startsWith('/')) return path
  return path === '.' ? '/' : `/${path}`
}

function origin(endpoint: Endpoint): string {
  const host = endpoint.host.includes(':') && !endpoint.host.startsWith('[') ? `[${endpoint.host}]` : endpoint.host
  return `sftp://${host}:${endpoint.port}`
}

/** The server did not let us in, or we did not trust the server: no attempt will do better. */
class LoginRefused extends Error {}

/** Opens an SSH connection in a free host slot, checks the host key, logs in and starts the SFTP subsystem. */
async function connect(endpoint: Endpoint, context: BackendContext, signal: AbortSignal): Promise<Session> {
  const release = await context.hosts.acquire(origin(endpoint), signal)
  const client = new Client()
  // Ours, not ssh2's: SftpWriter corks it so that the packets of one request leave in one system call.
  const socket = new Socket()
  // No Nagle: requests sent without waiting (a write with its fstat and close, a rename with the next
  // open) must leave at once, not behind the ACK of the one before, which a far server sends with its
  // reply: measured through the test's far link, each such pair cost a round trip more.
  socket.setNoDelay(true)
  // ssh2 throws an 'error' nobody listens to; the handlers below see each error that matters.
  client.on('error', () => {})
  // ssh2 may still finish a login or open the SFTP channel from data that arrived just before a
  // destroy: only this flag tells that such a session is dead.
  let gone = false
  client.once('close', () => (gone = true))
  const stop = (): void => {
    client.destroy()
  }
  signal.addEventListener('abort', stop, { once: true })
  try {
    // Aborted while we waited for the slot: destroying a client that has not connected yet stops nothing.
    signal.throwIfAborted()
    await login(client, socket, endpoint, context, signal)
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))))
    if (gone || signal.aborted) throw new Error('connection closed while the SFTP session opened')
    const session: Session = { client, socket, sftp, release, closed: false, posixRename: true, pending: new Set() }
    let lastError: Error | undefined
    client.on('error', (e) => (lastError = e))
    sftp.on('error', (e: Error) => (lastError = e))
    const lost = (): void => closeSession(session, new Error(`connection lost${lastError ? `: ${lastError.message}` : ''}`))
    client.once('close', lost)
    sftp.once('close', lost)
    return session
  } catch (e) {
    client.destroy()
    socket.destroy() // ssh2 may have refused its settings before it took the socket over
    release()
    throw e
  } finally {
    signal.removeEventListener('abort', stop)
  }
}

/**
 * Connects `socket` and logs in over it; resolves once logged in, and a refused host key or login
 * rejects with LoginRefused. Aborting `signal` destroys `client`.
 */
async function login(client: Client, socket: Socket, endpoint: Endpoint, context: BackendContext, signal: AbortSignal): Promise<void> {
  const { user, password, privateKey } = endpoint
  if (!user) throw new LoginRefused('no user name: give one in the URL or in the per-host credentials')
  const hostKeys = await hostKeyCheck(context.ssh, unbracketed(endpoint.host), endpoint.port).catch((e: unknown) => {
    throw new LoginRefused(`the host key cannot be checked: ${(e as Error).message}`, { cause: e })
  })
  // Resolved once and checked by the location policy; the host key is still looked up by the URL's name.
  const address = await checkedAddress(context, { scheme: 'sftp', host: endpoint.host, port: endpoint.port })
  signal.throwIfAborted() // from here on, aborting destroys a connecting client
  let refusal: string | undefined
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve)
    // Until 'ready', the first error or close decides; ssh2 reports a refused host key only as "Host denied".
    client.once('error', (e: Error & { level?: string }) => {
      if (refusal) reject(new LoginRefused(refusal, { cause: e }))
      else if (e.level === 'client-authentication') reject(new LoginRefused(`login refused for user ${user}`, { cause: e }))
      else reject(e)
    })
    client.once('close', () => reject(new Error('connection closed during login')))
    try {
      socket.connect({ host: address, port: endpoint.port })
      client.connect({
        sock: socket,
        username: user,
        ...(password !== undefined && { password }),
        ...(privateKey !== undefined && { privateKey }),
        readyTimeout: context.timeoutMs,
        keepaliveInterval: context.timeoutMs,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        algorithms: { serverHostKey: hostKeys.algorithms as ServerHostKeyAlgorithm[] },
        hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
          hostKeys.verify(key).then(
            (verdict) => {
              if (!verdict.trusted) refusal = verdict.reason
              verify(verdict.trusted)
            },
            (e: unknown) => {
              refusal = `the host key cannot be checked: ${(e as Error).message}`
              verify(false)
            },
          )
        },
      })
    } catch (e) {
      // ssh2 checks its settings synchronously: in practice, a private key it cannot parse.
      reject(new LoginRefused(`the SSH client refused the login settings: ${(e as Error).message}`, { cause: e }))
    }
  })
}

/** `promise`, or the abort of `signal` if that comes first (the request itself is not taken back). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const stop = (): void => reject(signal.reason)
    signal.addEventListener('abort', stop, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop))
  })
}

const statusCodes: Readonly<Record<number, Code>> = {
  [STATUS.NO_SUCH_FILE]: 'ERR_NOT_FOUND',
  [STATUS.PERMISSION_DENIED]: 'ERR_PERMISSION',
  [STATUS.FAILURE]: 'ERR_TRANSFER', // no reason given; on a write usually a full disk or quota
  [STATUS.NO_CONNECTION]: 'ERR_TRANSFER',
  [STATUS.CONNECTION_LOST]: 'ERR_TRANSFER',
  [STATUS.OP_UNSUPPORTED]: 'ERR_PERMISSION',
}

/** Our code for an ssh2 failure. `connecting`: it happened before the SFTP session was up. */
export function codeFor(e: unknown, connecting: boolean): Code {
  if (e instanceof LoginRefused) return 'ERR_AUTH'
  // Refused, unresolvable, timed out or reset before the login completed: nobody serves there.
  if (connecting) return 'ERR_UNREACHABLE'
  const status = sftpStatus(e)
  if (status !== undefined) return statusCodes[status] ?? 'ERR_INTERNAL'
  // What remains (lost connection, keepalive timeout, a failing body stream) may pass on another attempt.
  return networkErrorCode(e) ?? 'ERR_TRANSFER'
}

class SftpBackend implements Backend {
  readonly scheme = 'sftp' as const
  // posix-rename@openssh.com replaces in one step; elsewhere `rename` removes the target first.
  readonly features = { atomicRename: true, writable: true, append: true }
  private readonly pool: ConnectionPool<Session>
  private readonly knownDirs = new KnownDirs()
  /** Where a rename is sent without taking a session (see `rename`). */
  private lastGivenBack: Session | undefined

  constructor(
    private readonly endpoint: Endpoint,
    private readonly context: BackendContext,
  ) {
    this.pool = new ConnectionPool({
      connect: (signal) => connect(endpoint, context, signal),
      isOpen: (session) => !session.closed,
      discard: (session) => closeWhenSettled(session, new Error('session closed'), session.release),
      onLost: (session, lost) => session.client.once('close', lost),
      idleMs: context.timeoutMs,
      maxIdle: MAX_IDLE_SESSIONS,
    })
  }

  async stat(path: string, signal: AbortSignal): Promise<Entry> {
    const remote = remotePath(path)
    return this.use('stat', remote, signal, async (s) => entryOf(path, await statOf(s, remote)))
  }

  async list(dir: string, signal: AbortSignal): Promise<Entry[]> {
    const remote = remotePath(dir)
    return this.use('list', remote, signal, async (s) => {
      if (!(await statOf(s, remote)).isDirectory()) throw this.fail('ERR_NOT_A_DIRECTORY', 'list', remote, 'not a directory')
      const children = await call<FileEntryWithStats[]>(s, (cb) => s.sftp.readdir(remote, cb))
      const entries: Entry[] = []
      for (const { filename, attrs } of children) {
        // A symbolic link is listed as itself: what it points to decides; one pointing nowhere is left out.
        const stats = attrs.isSymbolicLink() ? await statOf(s, posix.join(remote, filename)).catch(() => undefined) : attrs
        if (stats) entries.push(entryOf(posix.join(dir, filename), stats))
      }
      return entries
    })
  }

  async read(path: string, signal: AbortSignal, offset = 0): Promise<Readable> {
    const remote = remotePath(path)
    // Opened here so that a missing file rejects `read` itself, not the stream later.
    const { session, handle } = await this.use(
      'read',
      remote,
      signal,
      async (s) => {
        if ((await statOf(s, remote)).isDirectory()) throw this.fail('ERR_NOT_FOUND', 'read', remote, 'not a file')
        return { session: s, handle: await call<Buffer>(s, (cb) => s.sftp.open(remote, 'r', cb)) }
      },
      true,
    )
    const abort = (): void => closeSession(session, new Error('aborted'))
    signal.addEventListener('abort', abort, { once: true })
    if (signal.aborted) abort() // between `use` and here: the stream fails at its first read
    const translate = (e: unknown): PublishError => this.translate(e, 'read', remote, signal)
    return new SftpReader(session, handle, offset, translate, () => {
      signal.removeEventListener('abort', abort)
      this.giveBack(session)
    }, READ_BUFFER_BYTES)
  }

  /** Resolves with the size the server reports for the open file just before closing it. */
  async write(path: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<number | void> {
    // A body failing while directories are made must not crash the process; the upload reports it.
    body.on('error', () => {})
    const remote = remotePath(path)
    let opened = false
    try {
      return await this.use('write', remote, signal, async (s, release) => {
        await this.makeDirs(s, posix.dirname(remote), 'write')
        // SFTP v3 writes at explicit offsets, even in append mode: continue at the current size.
        const start = options.append ? (options.resumeFrom ?? (await statOf(s, remote).catch(ifMissing(undefined)))?.size ?? 0) : 0
        opened = true
        const handle = await call<Buffer>(s, (cb) => s.sftp.open(remote, options.append ? 'a' : 'w', cb))
        const translate = (e: unknown): PublishError => this.translate(e, 'write', remote, signal)
        // Once the last requests are sent, the session goes back to the pool while their replies
        // come: the caller's next write takes it, and its open leaves with them (see `onSent`).
        const writer = new SftpWriter(s, handle, start, translate, WRITE_BUFFER_BYTES, () => {
          release()
          options.onSent?.()
        })
        await pipeline(body, writer, { signal })
        return writer.size
      })
    } catch (e) {
      body.destroy()
      // An appended file keeps what it had: resuming it later is the point.
      if (opened && !options.append) await this.removeLeftover(remote)
      throw e
    }
  }

  /**
   * With posix-rename@openssh.com, one request, sent at once on the session last given back to the
   * pool, without taking it: SFTP answers requests by their ids, so it may carry another caller's
   * requests meanwhile, and the caller's next request (the next file's open, which takes that
   * session) leaves with it, one round trip for both. Resolves with the reply. Without such a
   * session, or elsewhere than OpenSSH, a session is taken for the steps of `renameReplacing`.
   */
  async rename(from: string, to: string, signal: AbortSignal): Promise<void> {
    const source = remotePath(from)
    const target = remotePath(to)
    const session = this.lastGivenBack
    if (signal.aborted || !session || session.closed || !session.posixRename) {
      return this.use('rename', source, signal, (s) => renameReplacing(s, source, target))
    }
    try {
      await abortable(
        call(session, (cb) => session.sftp.ext_openssh_rename(source, target, cb)),
        signal,
      )
    } catch (e) {
      // ssh2 refuses, without a status, an extension the server did not announce: then step by step.
      const status = sftpStatus(e)
      if (!signal.aborted && !session.closed && (status === undefined || status === STATUS.OP_UNSUPPORTED)) {
        session.posixRename = false
        return this.use('rename', source, signal, (s) => renameReplacing(s, source, target))
      }
      throw this.translate(e, 'rename', source, signal)
    }
  }

  async remove(path: string, signal: AbortSignal): Promise<void> {
    const remote = remotePath(path)
    await this.use('remove', remote, signal, async (s) => {
      // lstat: a symbolic link is removed itself, never what it points to.
      const stats = await call<Stats>(s, (cb) => s.sftp.lstat(remote, cb))
      await call(s, (cb) => (stats.isDirectory() ? s.sftp.rmdir(remote, cb) : s.sftp.unlink(remote, cb)))
      this.knownDirs.forget(remote)
    })
  }

  async mkdir(path: string, signal: AbortSignal): Promise<void> {
    const remote = remotePath(path)
    await this.use('mkdir', remote, signal, (s) => this.makeDirs(s, remote, 'mkdir'))
  }

  async close(): Promise<void> {
    await this.pool.close()
  }

  /**
   * Runs `work` on a pooled session, which aborting `signal` closes; errors leave translated. With
   * `keep`, a successful `work` keeps the session, for a stream that gives it back when it closes.
   * `work` may give the session back early (`release`), once it only awaits replies: SFTP answers
   * requests by their ids, so another caller's requests may share the session meanwhile.
   */
  private async use<T>(op: Operation, remote: string, signal: AbortSignal, work: (session: Session, release: () => void) => Promise<T>, keep = false): Promise<T> {
    const session = await this.take(op, remote, signal)
    const stop = (): void => closeSession(session, new Error('aborted'))
    signal.addEventListener('abort', stop, { once: true })
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.giveBack(session)
    }
    try {
      const result = await work(session, release)
      if (!keep) release()
      return result
    } catch (e) {
      release()
      throw this.translate(e, op, remote, signal)
    } finally {
      signal.removeEventListener('abort', stop)
    }
  }

  private get closed(): boolean {
    return this.pool.closed
  }

  private async take(op: Operation, remote: string, signal: AbortSignal): Promise<Session> {
    try {
      return await this.pool.take(signal)
    } catch (e) {
      throw this.translate(e, op, remote, signal, true)
    }
  }

  /** Pools a session again unless it was closed: an SFTP request always ends in a reply or a lost connection. */
  private giveBack(session: Session): void {
    this.lastGivenBack = session
    this.pool.giveBack(session)
  }

  /** Makes each missing level, top down. */
  private async makeDirs(s: Session, dir: string, op: Operation): Promise<void> {
    if (dir === '.' || dir === '/' || this.knownDirs.has(dir)) return
    const stats = await statOf(s, dir).catch(ifMissing(undefined))
    if (stats && !stats.isDirectory()) throw this.fail('ERR_NOT_A_DIRECTORY', op, dir, 'a file is in the way')
    if (!stats) {
      await this.makeDirs(s, posix.dirname(dir), op)
      try {
        await call(s, (cb) => s.sftp.mkdir(dir, cb))
      } catch (e) {
        // Another session (a parallel write) may have made it since we looked.
        if (!(await statOf(s, dir).catch(ifMissing(undefined)))?.isDirectory()) throw e
      }
    }
    this.knownDirs.add(dir)
  }

  /** Best effort, under a signal of its own: the task's signal may be why the upload stopped. */
  private async removeLeftover(remote: string): Promise<void> {
    const signal = AbortSignal.timeout(this.context.timeoutMs)
    await this.use('remove', remote, signal, (s) => call(s, (cb) => s.sftp.unlink(remote, cb))).catch(() => {})
  }

  private translate(e: unknown, op: Operation, remote: string, signal: AbortSignal, connecting = false): PublishError {
    if (e instanceof PublishError) return e
    if (signal.aborted || this.closed) return this.fail('ERR_SHUTDOWN', op, remote, signal.aborted ? 'aborted' : 'backend closed', e)
    const code = codeFor(e, connecting)
    let why = e instanceof Error ? e.message : String(e)
    if (op === 'write' && sftpStatus(e) === STATUS.FAILURE) why += ' (the server gives no reason: often a full disk or quota)'
    return this.fail(code, op, remote, why, e)
  }

  /** An error naming the operation, the URL without credentials, and why; the password never shows. */
  private fail(code: Code, op: Operation, remote: string, why: string, cause?: unknown): PublishError {
    const { password } = this.endpoint
    const reason = password ? why.split(password).join(REDACTED) : why
    const urlPath = remote.startsWith('/') ? remote.slice(1) : `~/${remote === '.' ? '' : remote}`
    return new PublishError(code, `${op} ${origin(this.endpoint)}/${urlPath}: ${reason}`, { cause })
  }
}
