import { posix } from 'node:path'
import { Writable, type PassThrough } from 'node:stream'
import { FTPError, type Client, type FileInfo, type FTPContext } from 'basic-ftp'
import type { Entry } from './types.js'

// FTP commands and replies the backend needs beyond basic-ftp's own API, each for a server quirk.

/** One logged-in control connection and the host slot it holds until it is closed. */
export interface Connection {
  readonly client: Client
  readonly release: () => void
  /** The absolute login directory, where a CWD probe puts the client back. */
  readonly home: string
  /** The server offers MLST: one command tells a file from a directory and gives its size. */
  readonly mlst: boolean
  idleTimer?: NodeJS.Timeout
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

/** SIZE, or the parent's listing when the reply carries no number (ftp-srv answers "213 File status" for 0 bytes). */
async function sizeOf(client: Client, path: string): Promise<number> {
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

/**
 * RNFR + RNTO. RFC 959 leaves RNTO onto an existing file to the server; where it is refused with a
 * permanent reply and a target exists, the target is deleted and the rename tried once more.
 */
export async function renameReplacing(client: Client, from: string, to: string): Promise<void> {
  const source = await client.protectWhitespace(from)
  const target = await client.protectWhitespace(to)
  await client.send(`RNFR ${source}`) // 550 here: `from` is missing, and `to` stays untouched
  try {
    await client.send(`RNTO ${target}`)
  } catch (e) {
    if (!(e instanceof FTPError) || e.code < 500) throw e
    await client.remove(to).catch(() => {
      throw e // nothing to replace: RNTO failed for another reason
    })
    await client.send(`RNFR ${source}`)
    await client.send(`RNTO ${target}`)
  }
}

/**
 * A destination for `downloadTo` that forwards into `out` at the pace `out` is read. basic-ftp ends
 * its destination even when the transfer failed, so `out` is never handed to it: we end `out` only
 * after the server confirmed the whole file.
 */
export function forwardInto(out: PassThrough, ftp: FTPContext): Writable {
  return new Writable({
    write(chunk, _encoding, next) {
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
