import { posix } from 'node:path'
import { once } from 'node:events'
import { Readable, Writable, type PassThrough } from 'node:stream'
import { TLSSocket } from 'node:tls'
import { FTPError, type Client, type FileInfo, type FTPContext } from 'basic-ftp'
import type { Entry } from '../types.js'

// FTP commands and replies the backend needs beyond basic-ftp's own API, each for a server quirk.

/** One logged-in control connection and the host slot it holds until it is closed. */
export interface Connection {
  readonly client: Client
  readonly release: () => void
  /** The absolute login directory, where a CWD probe puts the client back. */
  readonly home: string
  /** The server offers MLST: one command tells a file from a directory and gives its size. */
  readonly mlst: boolean
  /** The FEAT reply: each feature's name in upper case, and what follows it on its line. */
  readonly features: ReadonlyMap<string, string>
  /** The algorithm HASH uses on this connection, as FEAT marked it or OPTS HASH chose it. */
  hashAlgorithm?: string
}

/** What is at `path`, or undefined when nothing is (550). The working directory is left unchanged. */
export async function entryOf(conn: Connection, path: string): Promise<Entry | undefined> {
  try {
    return conn.mlst ? await entryByMlst(conn.client, path) : await entryByCwdAndSize(conn, path)
  } catch (e) {
    if (e instanceof FTPError && e.code === 550) return undefined
    throw e
  }
}

async function entryByMlst(client: Client, path: string): Promise<Entry> {
  const reply = await client.send(`MLST ${await client.protectWhitespace(path)}`)
  return { path, ...parseMlst(reply.message) }
}

/** The facts line of an MLST reply: "250-Listing x\n type=file;size=3;modify=…; /x\n250 End". */
export function parseMlst(message: string): Pick<Entry, 'type' | 'size'> {
  const line = message.split('\n').find((l) => l.startsWith(' '))
  if (!line) throw new Error(`unreadable MLST reply: ${message}`)
  const facts = new Map<string, string>()
  for (const fact of line.slice(1, line.indexOf(' ', 1)).split(';')) {
    const eq = fact.indexOf('=')
    if (eq > 0) facts.set(fact.slice(0, eq).toLowerCase(), fact.slice(eq + 1).toLowerCase())
  }
  // cdir and pdir: some servers describe the directory itself (MLST .) that way.
  const type = facts.get('type') ?? ''
  if (type === 'dir' || type === 'cdir' || type === 'pdir') return { type: 'directory', size: 0 }
  return { type: 'file', size: Number(facts.get('size') ?? 0) }
}

/** Without MLST: only a directory accepts CWD (we go back home at once); SIZE gives a file's size. */
async function entryByCwdAndSize(conn: Connection, path: string): Promise<Entry> {
  const { client } = conn
  const isDirectory = await client.cd(path).then(
    () => true,
    (e: unknown) => {
      if (e instanceof FTPError && e.code === 550) return false
      throw e
    },
  )
  if (!isDirectory) return { path, type: 'file', size: await sizeOf(client, path) }
  try {
    await client.cd(conn.home)
  } catch (e) {
    client.close() // stranded in another directory, it must not be pooled again
    throw e
  }
  return { path, type: 'directory', size: 0 }
}

/** SIZE of a file, or the parent's listing when the reply carries no number (ftp-srv answers "213 File status" for 0 bytes). */
export async function sizeOf(client: Client, path: string): Promise<number> {
  const reply = await client.send(`SIZE ${await client.protectWhitespace(path)}`)
  const size = Number.parseInt(reply.message.slice(4), 10)
  if (!Number.isNaN(size)) return size
  const name = posix.basename(path)
  const listed = (await client.list(posix.dirname(path))).find((f) => f.name === name)
  if (!listed) throw new Error(`unreadable SIZE reply: ${reply.message}`)
  return listed.size
}

export function childEntry(dir: string, file: FileInfo): Entry {
  const path = posix.join(dir, file.name)
  return file.isDirectory ? { path, type: 'directory', size: 0 } : { path, type: 'file', size: file.size }
}

/** How `renameReplacing` ended: done, `from` absent, or a server that will not do this rename. */
export type RenameOutcome = 'renamed' | 'missing' | 'refused'

/**
 * RNFR + RNTO. RFC 959 leaves RNTO onto an existing file to the server; where it is refused with a
 * permanent reply and a target exists, the target is deleted and the rename tried once more.
 * 'refused': a permanent refusal that deleting the target did not cure, or a target that cannot be
 * deleted, or RNFR refused for a file that exists (some origins allow no rename at all).
 */
export async function renameReplacing(conn: Connection, from: string, to: string): Promise<RenameOutcome> {
  const { client } = conn
  const source = await client.protectWhitespace(from)
  const target = await client.protectWhitespace(to)
  const attempt = async (): Promise<RenameOutcome> => {
    try {
      await client.send(`RNFR ${source}`)
    } catch (e) {
      if (!isPermanent(e)) throw e
      // Mostly 550 for a missing `from`, and `to` stays untouched; a refusal only if `from` is there.
      return (await entryOf(conn, from)) ? 'refused' : 'missing'
    }
    try {
      await client.send(`RNTO ${target}`)
      return 'renamed'
    } catch (e) {
      if (!isPermanent(e)) throw e
      return 'refused'
    }
  }
  const first = await attempt()
  if (first !== 'refused' || !(await entryOf(conn, to))) return first
  try {
    await client.remove(to)
  } catch (e) {
    if (!isPermanent(e)) throw e
    return 'refused'
  }
  return attempt()
}

/** A negative reply that repeating the same command will not change (RFC 959 5yz). */
function isPermanent(e: unknown): boolean {
  return e instanceof FTPError && e.code >= 500
}

/**
 * basic-ftp arms a connect timeout on the TCP socket of each data connection and, with TLS, then
 * removes its listener from the TLS socket above rather than from that TCP socket: the timer stays
 * armed and, once a slow reader has held the data back that long, silently destroys the transfer.
 * The TLS socket keeps a timeout of its own while data flows, so the TCP one is cleared on connect.
 * Call it after login: from then on basic-ftp makes sockets (`_newSocket`, its seam for tests) only
 * for data connections.
 */
export function keepTlsDataSocketsOpen(ftp: FTPContext): void {
  const newSocket = ftp._newSocket.bind(ftp)
  ftp._newSocket = () => {
    const socket = newSocket()
    if (ftp.hasTLS) socket.once('connect', () => socket.setTimeout(0))
    return socket
  }
}

/**
 * `body`, from its first read on waiting for the TLS handshake of the data connection. basic-ftp
 * starts an upload once `getCipher()` answers, which a socket resuming a TLS session does before
 * its handshake: data written early is buffered until then, but an end with no data before it
 * closes the socket mid-handshake, and vsftpd fails the upload ("SSL_accept failed: unexpected
 * eof"): every 0-byte file. basic-ftp reads the body only once the server accepted the upload,
 * when `ftp.dataSocket` is the upload's.
 */
export function afterHandshake(body: Readable, ftp: FTPContext): Readable {
  return Readable.from(
    (async function* () {
      const socket = ftp.dataSocket
      // `authorized` turns true with the handshake, certificates being always verified here.
      if (socket instanceof TLSSocket && !socket.authorized) await once(socket, 'secureConnect')
      yield* body
    })(),
    { objectMode: false },
  )
}

/**
 * A destination for `downloadTo` that forwards into `out` at the pace `out` is read, and calls
 * `onFirst` with the first bytes. basic-ftp ends its destination even when the transfer failed, so
 * `out` is never handed to it: we end `out` only after the server confirmed the whole file.
 */
export function forwardInto(out: PassThrough, ftp: FTPContext, onFirst: () => void): Writable {
  let first = true
  return new Writable({
    write(chunk, _encoding, next) {
      if (first) {
        first = false
        onFirst()
      }
      if (out.write(chunk)) return next()
      // A reader taking its time is no dead server: the data socket's idle timeout waits meanwhile.
      ftp.dataSocket?.setTimeout(0)
      out.once('drain', () => {
        ftp.dataSocket?.setTimeout(ftp.timeout)
        next()
      })
    },
  })
}
