import { FTPError } from 'basic-ftp'
import type { Connection } from './protocol.js'
import type { HashAlgorithm } from '../types.js'

// Digests computed by the FTP server itself. No RFC covers them; servers offer one or more of:
// HASH (draft-bryan-ftpext-hash: FEAT "HASH SHA-1*;SHA-256;MD5", OPTS HASH to choose, reply
// "213 SHA-256 0-1234 <hex> <path>"), XSHA256 and XMD5 (ProFTPD mod_digest, Serv-U: "250 <hex>"),
// and MD5 (draft-twine-ftpmd5: "251 <path> <hex>").

export type HashCommand = 'HASH' | 'XSHA256' | 'XMD5' | 'MD5'

export interface HashMethod {
  readonly command: HashCommand
  /** For HASH: the algorithm's name as FEAT lists it and OPTS HASH takes it. */
  readonly name?: string
}

const hashNames: Readonly<Record<HashAlgorithm, string>> = { md5: 'MD5', sha256: 'SHA-256' }
const hexLengths: Readonly<Record<HashAlgorithm, number>> = { md5: 32, sha256: 64 }
const legacyCommands: Readonly<Record<HashAlgorithm, readonly HashCommand[]>> = { md5: ['XMD5', 'MD5'], sha256: ['XSHA256'] }

// The server reads the whole file before it answers, while the control connection sits silent:
// the usual idle timeout would cut it off. Ten minutes covers some 12 GB at a slow 20 MB/s.
const HASH_TIMEOUT_MS = 10 * 60_000

/** The command that gives `algorithm` on a server with these FEAT lines (upper-case names), the standard HASH first. */
export function hashMethod(features: ReadonlyMap<string, string>, algorithm: HashAlgorithm): HashMethod | undefined {
  const name = hashNames[algorithm]
  if (hashList(features).some((offered) => offered.name === name)) return { command: 'HASH', name }
  const command = legacyCommands[algorithm].find((c) => features.has(c))
  return command && { command }
}

/** The algorithm FEAT marks with `*` as HASH's current one, if any. */
export function selectedHash(features: ReadonlyMap<string, string>): string | undefined {
  return hashList(features).find((offered) => offered.selected)?.name
}

function hashList(features: ReadonlyMap<string, string>): Array<{ name: string; selected: boolean }> {
  const list = features.get('HASH')
  if (!list) return []
  return list.split(';').map((entry) => ({ name: entry.replace(/\*$/, '').trim().toUpperCase(), selected: entry.endsWith('*') }))
}

/**
 * The digest in the reply to `method`, in lower-case hex; undefined for a reply without a digest of
 * the algorithm's length (or, for HASH, one of another algorithm).
 */
export function parseHashReply(method: HashMethod, message: string, algorithm: HashAlgorithm): string | undefined {
  const lastLine = message.trimEnd().split('\n').pop() ?? ''
  const words = lastLine.slice(4).trim().split(/\s+/)
  const isDigest = (word: string | undefined): word is string => word !== undefined && word.length === hexLengths[algorithm] && /^[0-9a-f]+$/i.test(word)
  let digest: string | undefined
  if (method.command === 'HASH') {
    // "<algorithm> <first>-<last> <hex> <path>"
    if (words[0]?.toUpperCase() === method.name) digest = words[2]
  } else if (method.command === 'MD5') {
    // "<path> <hex>": the path may contain spaces, the digest comes last.
    digest = words.at(-1)
  } else {
    digest = words[0]
  }
  return isDigest(digest) ? digest.toLowerCase() : undefined
}

/**
 * Asks the server for the digest of `path`; undefined when it offers no command for `algorithm`,
 * declines (any reply but 550: a verification that cannot happen is no reason to fail a publish),
 * or answers with something unreadable.
 * @throws FTPError 550 when `path` is absent; whatever breaks the connection.
 */
export async function hashOf(conn: Connection, path: string, algorithm: HashAlgorithm): Promise<string | undefined> {
  const method = hashMethod(conn.features, algorithm)
  if (!method) return undefined
  const { client } = conn
  const { ftp } = client
  try {
    if (method.name && (conn.hashAlgorithm ?? selectedHash(conn.features)) !== method.name) {
      await client.send(`OPTS HASH ${method.name}`)
      conn.hashAlgorithm = method.name
    }
    ftp.socket.setTimeout(Math.max(ftp.timeout, HASH_TIMEOUT_MS))
    const reply = await client.send(`${method.command} ${await client.protectWhitespace(path)}`)
    return parseHashReply(method, reply.message, algorithm)
  } catch (e) {
    if (e instanceof FTPError && e.code !== 550) return undefined
    throw e
  } finally {
    if (!client.closed) ftp.socket.setTimeout(ftp.timeout)
  }
}
