import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { appendFile, mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { SshOptions } from '../types.js'

// OpenSSH's known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"), read the way `ssh` reads it:
// plain and wildcard host patterns, `[host]:port` for other ports than 22, hashed `|1|salt|hash`
// names, `@revoked` keys. `@cert-authority` lines are skipped: we never accept host certificates.

/** One key line of a known_hosts file. */
export interface KnownHost {
  /** 1-based, for messages that point at the line to fix. */
  readonly line: number
  readonly revoked: boolean
  /** The host field as written: comma-separated patterns or one hashed name. */
  readonly hosts: string
  readonly keyType: string
  /** The key in SSH wire format, as a server presents it during key exchange. */
  readonly key: Buffer
}

/** Whether a presented host key may be used, and if not, why (a sentence naming the key and the file). */
export type HostKeyVerdict = { readonly trusted: true } | { readonly trusted: false; readonly reason: string }

export interface HostKeyCheck {
  /** Host key algorithms to offer, those of the recorded keys first, as `ssh` orders them. */
  readonly algorithms: string[]
  /** Checks the key the server presented; under `accept-new`, a first key for the host is recorded. */
  verify(key: Buffer): Promise<HostKeyVerdict>
}

/** The host key algorithms we accept, in our order of preference; each key type's signature algorithms. */
const algorithmsByKeyType: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['ssh-ed25519', ['ssh-ed25519']],
  ['ecdsa-sha2-nistp256', ['ecdsa-sha2-nistp256']],
  ['ecdsa-sha2-nistp384', ['ecdsa-sha2-nistp384']],
  ['ecdsa-sha2-nistp521', ['ecdsa-sha2-nistp521']],
  ['ssh-rsa', ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
]

/** Parses a known_hosts file; comments, blank, malformed and `@cert-authority` lines are skipped. */
export function parseKnownHosts(text: string): KnownHost[] {
  const entries: KnownHost[] = []
  text.split(/\r?\n/).forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/)
    if (fields[0] === '' || fields[0]?.startsWith('#')) return
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined
    if (marker !== undefined && marker !== '@revoked') return
    const [hosts, keyType, base64] = fields
    if (!hosts || !keyType || !base64) return
    const key = Buffer.from(base64, 'base64')
    // The blob names its own type; a line whose two disagree is corrupt (or hand-edited wrongly).
    if (key.length < 4 || wireKeyType(key) !== keyType) return
    entries.push({ line: index + 1, revoked: marker === '@revoked', hosts, keyType, key })
  })
  return entries
}

/** How known_hosts names a server: `host` on port 22, `[host]:port` on any other. */
export function knownHostName(host: string, port: number): string {
  const name = host.toLowerCase()
  return port === 22 ? name : `[${name}]:${port}`
}

/** Whether the line's host field names `name` (from `knownHostName`). */
export function hostMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) return hashedNameMatches(hosts, name)
  let matched = false
  for (const pattern of hosts.toLowerCase().split(',')) {
    const negated = pattern.startsWith('!')
    if (!globMatches(negated ? pattern.slice(1) : pattern, name)) continue
    if (negated) return false // a negated match excludes the host whatever else the line lists
    matched = true
  }
  return matched
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` and HashKnownHosts write it. */
function hashedNameMatches(hosts: string, name: string): boolean {
  const [, , salt, hash] = hosts.split('|')
  if (!salt || !hash) return false
  const expected = Buffer.from(hash, 'base64')
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest()
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** OpenSSH patterns: `*` any run of characters, `?` any one character. */
function globMatches(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${source}$`).test(name)
}

/**
 * What the recorded lines say of `key` for `name`. A host with a recorded key of any type counts as
 * known: a key of another type is refused like a changed key, where `ssh` would treat it as new. A
 * key marked `@revoked` is refused whatever hosts its line names.
 */
export function judgeHostKey(entries: readonly KnownHost[], name: string, key: Buffer): 'known' | 'unknown' | 'changed' | 'revoked' {
  if (entries.some((e) => e.revoked && e.key.equals(key))) return 'revoked'
  const recorded = entries.filter((e) => !e.revoked && hostMatches(e.hosts, name))
  if (recorded.length === 0) return 'unknown'
  return recorded.some((e) => e.key.equals(key)) ? 'known' : 'changed'
}

/** The line `accept-new` appends: the plain name, so that an operator can read what was trusted. */
export function knownHostsLine(name: string, key: Buffer): string {
  return `${name} ${wireKeyType(key)} ${key.toString('base64')}`
}

/** `SHA256:…` as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
}

/** The key type a wire-format key starts with (a length-prefixed string). */
function wireKeyType(key: Buffer): string {
  const length = key.readUInt32BE(0)
  return key.subarray(4, 4 + length).toString('latin1')
}

// known_hosts writes of one process are serialised per SshOptions (one per running server), so that
// two sessions opening at once to a new host record it once, and a rival key is seen as a change.
const appending = new WeakMap<SshOptions, Promise<unknown>>()

/**
 * The host key check for one connection to `host`:`port`, reading `options.knownHostsFile` (a
 * missing file is an empty one). Under `strict`, only a recorded key passes. Under `accept-new`, a
 * host with no recorded key has its key appended to the file; a changed key never passes.
 */
export async function hostKeyCheck(options: SshOptions, host: string, port: number): Promise<HostKeyCheck> {
  const file = options.knownHostsFile
  const name = knownHostName(host, port)
  const entries = await readKnownHosts(file)
  const recordedTypes = new Set(entries.filter((e) => !e.revoked && hostMatches(e.hosts, name)).map((e) => e.keyType))
  const ordered = [...algorithmsByKeyType].sort(([a], [b]) => Number(recordedTypes.has(b)) - Number(recordedTypes.has(a)))

  const refuse = (key: Buffer, why: string): HostKeyVerdict => ({
    trusted: false,
    reason: `host key ${wireKeyType(key)} ${fingerprint(key)} of ${name} ${why}`,
  })
  const judge = (known: readonly KnownHost[], key: Buffer): HostKeyVerdict | 'unknown' => {
    const verdict = judgeHostKey(known, name, key)
    if (verdict === 'known') return { trusted: true }
    if (verdict === 'unknown') return 'unknown'
    if (verdict === 'revoked') return refuse(key, `is marked @revoked in ${file}`)
    const lines = known.filter((e) => !e.revoked && hostMatches(e.hosts, name)).map((e) => e.line)
    return refuse(key, `differs from the key recorded in ${file} (line ${lines.join(', ')}): refused, the server may be an impostor; if its key really changed, remove that line`)
  }

  return {
    algorithms: ordered.flatMap(([, algorithms]) => algorithms),
    async verify(key) {
      const first = judge(entries, key)
      if (first !== 'unknown') return first
      if (options.hostKeyPolicy !== 'accept-new') return refuse(key, `is not in ${file} (host key policy strict): add the server's line, e.g. from ssh-keyscan`)
      const turn = (appending.get(options) ?? Promise.resolve())
        .catch(() => {})
        .then(async (): Promise<HostKeyVerdict> => {
          // Read again in our turn: another session may have recorded this host meanwhile.
          const text = await readText(file)
          const again = judge(parseKnownHosts(text), key)
          if (again !== 'unknown') return again
          await mkdir(dirname(file), { recursive: true })
          const separator = text === '' || text.endsWith('\n') ? '' : '\n'
          const line = knownHostsLine(name, key)
          await appendFile(file, `${separator}${line}\n`)
          options.onKeyRecorded?.(`${line.split(' ').slice(0, 2).join(' ')} ${fingerprint(key)}`)
          return { trusted: true }
        })
      appending.set(options, turn)
      return turn
    },
  }
}

async function readKnownHosts(file: string): Promise<KnownHost[]> {
  return parseKnownHosts(await readText(file))
}

/** The file's text; a missing file is an empty one. */
async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw e
  }
}
