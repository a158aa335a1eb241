import { lookup } from 'node:dns/promises'
import { fileURLToPath } from 'node:url'
import { isScheme, type Endpoint, type LocationGuard, type Scheme } from '../backends/index.js'
import { PublishError } from '../errors.js'
import { clip, redact } from '../observability/index.js'
import { parseIp } from './address.js'
import { createFileRoots } from './file-roots.js'
import { compileRules, withoutTrailingDot, type NetworkScheme, type RuleSources, type Subject, type Verdict } from './location-rules.js'

/** A URL taken apart for a backend. */
export interface Location {
  readonly endpoint: Endpoint
  /** The backend path, without a trailing slash. */
  readonly path: string
  /** The URL ended with a slash: it names a directory. */
  readonly isDirectory: boolean
  /** The URL itself, credentials included. */
  readonly url: string
}

/** `ftpes` is FTP with explicit TLS (AUTH TLS on the plain port), `ftps` implicit TLS. */
const defaultPorts: Readonly<Record<Scheme, number>> = { file: 0, ftp: 21, ftpes: 21, ftps: 990, sftp: 22, http: 80, https: 443, s3: 0 }

/**
 * @throws PublishError ERR_UNSUPPORTED_SCHEME for a scheme without a backend,
 *   ERR_REQUEST_INVALID for a URL that cannot be parsed.
 */
export function parseLocation(url: string): Location {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    // Not echoed: redaction relies on URL syntax, and an unparsable URL may hide a password anywhere.
    throw new PublishError('ERR_REQUEST_INVALID', `Not a valid URL (${/^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? 'no scheme'} …, ${url.length} characters)`)
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase()
  if (!isScheme(scheme)) throw new PublishError('ERR_UNSUPPORTED_SCHEME', `Unsupported URL scheme ${clip(scheme, 32)}: in ${clip(redact(url))}`)
  const isDirectory = parsed.pathname.endsWith('/')
  if (scheme === 'file') {
    if (parsed.host !== '' && parsed.host !== 'localhost') {
      throw new PublishError('ERR_REQUEST_INVALID', `file:// URLs name no host: ${clip(redact(url))}`)
    }
    let path: string
    try {
      path = fileURLToPath(parsed)
    } catch (e) {
      // An encoded '/' (%2F) or a malformed escape (%zz): the client's mistake, not ours.
      throw new PublishError('ERR_REQUEST_INVALID', `Not a usable file URL: ${clip(redact(url))}`, { cause: e })
    }
    return { endpoint: { scheme, host: '', port: 0 }, path: trimSlash(path), isDirectory, url }
  }
  const endpoint: Endpoint = {
    scheme,
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : defaultPorts[scheme],
    ...(parsed.username && { user: decodeComponent(parsed.username, url) }),
    ...(parsed.password && { password: decodeComponent(parsed.password, url) }),
    ...(parsed.search && (scheme === 'http' || scheme === 'https') && { query: parsed.search }),
  }
  // RFC 1738: the path is relative to the login directory; an encoded leading slash (%2F) makes it absolute.
  const path = decodeComponent(parsed.pathname.slice(1), url)
  return { endpoint, path: trimSlash(path) || '.', isDirectory, url }
}

/** `new URL` keeps a malformed escape such as `%zz` as it is; decoding it throws a URIError. */
function decodeComponent(text: string, url: string): string {
  try {
    return decodeURIComponent(text)
  } catch (e) {
    throw new PublishError('ERR_REQUEST_INVALID', `Malformed percent-encoding in ${clip(redact(url))}`, { cause: e })
  }
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** How a host name resolves: every address, as `dns.lookup(host, { all: true })` answers. */
export type Resolver = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>

export interface LocationPolicyOptions extends RuleSources {
  /** `dns.lookup` unless given: a test plays a name that changes its answer with its own. */
  readonly resolve?: Resolver
}

export interface LocationPolicy {
  /**
   * Judges what the location itself says: a file path against the roots; for a network URL its
   * scheme, host (name or address literal), port and path. The addresses of a host name are left to
   * `checkResolved` and to the connection (`guard`). @throws PublishError ERR_POLICY_DENIED
   */
  check(location: Location): void
  /**
   * `check`, then the addresses the host name resolves to now, each of them. A name that does not
   * resolve (within 2 s) passes: the task fails or is retried when it connects.
   * @throws PublishError ERR_POLICY_DENIED
   */
  checkResolved(location: Location): Promise<void>
  /** The same policy for the backends: connections, redirects and file paths as they are made. */
  readonly guard: LocationGuard
}

const defaultResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true })

/**
 * How long a request waits for its host name to resolve. The check when connecting is the one that
 * counts; this one only refuses early, and a resolver that hangs must not hold the WFM's request.
 */
const REQUEST_RESOLVE_TIMEOUT_MS = 2_000

/** What `host` resolves to, or nothing when it does not resolve within REQUEST_RESOLVE_TIMEOUT_MS. */
async function resolvedSoon(resolve: Resolver, host: string): Promise<ReadonlyArray<{ address: string }>> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<[]>((done) => (timer = setTimeout(() => done([]), REQUEST_RESOLVE_TIMEOUT_MS)))
  try {
    return await Promise.race([resolve(host).catch(() => []), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Where sources and destinations may be: `file://` inside `fileRoots` (after resolving `..` and
 * symlinks), network locations as the rules decide (location-rules.ts: explicit deny, the built-in
 * deny of metadata and link-local addresses, allow lists, else allowed).
 */
export function createLocationPolicy(fileRoots: readonly string[], options: LocationPolicyOptions = {}): LocationPolicy {
  const insideRoots = createFileRoots(fileRoots)
  const rules = compileRules(options)
  const resolveName = options.resolve ?? defaultResolver

  const checkFile = (path: string): void => {
    if (!insideRoots(path)) throw new PublishError('ERR_POLICY_DENIED', `file://${clip(path)} is outside the allowed file roots`)
  }
  const refuse = (location: Location, reason: string): PublishError => new PublishError('ERR_POLICY_DENIED', `${shown(location.url)} is not allowed: ${reason}`)

  const check = (location: Location): Subject | undefined => {
    if (location.endpoint.scheme === 'file') {
      checkFile(location.path)
      return undefined
    }
    const subject = subjectOf(location)
    if (subject.path === undefined) throw refuse(location, "its path climbs above its start with '..'")
    const verdict = rules.judge(subject)
    if (!verdict.allowed) {
      // An address spelled otherwise (2852039166, 0x7f.1, ::ffff:…) is named as the rules read it.
      const spelled = subject.address && unbracketed(location.endpoint.host) !== subject.address.text ? `${location.endpoint.host} is ${subject.address.text}; ` : ''
      throw refuse(location, spelled + verdict.reason)
    }
    return subject
  }

  const guard: LocationGuard = {
    async addressesFor({ scheme, host, port, bucket }) {
      if (scheme === 'file') throw new PublishError('ERR_INTERNAL', 'file:// makes no connection')
      const literal = parseIp(host)
      const name = bucket !== undefined ? hostName(bucket) : literal ? undefined : hostName(host)
      const found = literal ? [{ address: literal.text, family: literal.family }] : await resolveName(host)
      if (found.length === 0) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' })
      return found.map(({ address, family }) => {
        const ip = parseIp(address)
        const verdict: Verdict = ip ? rules.judge({ scheme, ...(name !== undefined && { name }), address: ip, port }) : { allowed: false, reason: `the resolver answered ${address}, not an address` }
        if (!verdict.allowed) {
          const where = bucket ? `s3://${bucket} (store ${host}:${port})` : `${scheme}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`
          throw new PublishError('ERR_POLICY_DENIED', `${where} is not allowed: ${literal ? '' : `${host} resolves to ${address}; `}${verdict.reason}`)
        }
        return { address, family: family === 6 ? 6 : 4 }
      })
    },
    checkUrl(url) {
      check(parseLocation(url))
    },
    checkFile,
  }

  return {
    check(location) {
      check(location)
    },
    async checkResolved(location) {
      const subject = check(location)
      // s3: the bucket is no host; the store's address is judged when connecting.
      if (!subject || subject.address || subject.name === undefined || location.endpoint.scheme === 's3') return
      const addresses = await resolvedSoon(resolveName, location.endpoint.host)
      for (const { address } of addresses) {
        const ip = parseIp(address)
        const verdict: Verdict = ip ? rules.judge({ ...subject, address: ip }) : { allowed: true }
        if (!verdict.allowed) throw refuse(location, `${subject.name} resolves to ${address}; ${verdict.reason}`)
      }
    },
    guard,
  }
}

/** What the rules see of a network location; `path` undefined when `..` climbs above the start. */
function subjectOf(location: Location): Subject {
  const { endpoint } = location
  const scheme = endpoint.scheme as NetworkScheme
  const path = rulePath(location)
  if (scheme === 's3') return { scheme, name: hostName(endpoint.host), ...(path !== undefined && { path }) }
  const address = parseIp(endpoint.host)
  return {
    scheme,
    ...(address ? { address } : { name: hostName(endpoint.host) }),
    port: endpoint.port,
    ...(path !== undefined && { path }),
  }
}

function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

function hostName(host: string): string {
  return withoutTrailingDot(host.toLowerCase())
}

/**
 * The path as rules see it: `/`-rooted, decoded, `.` and `..` resolved, a directory ending in `/`.
 * An FTP path from the server root (`%2F`) and one from the login directory read the same.
 * Undefined when `..` climbs above the start (decoded from `%2F..`, which URL parsing leaves alone).
 */
function rulePath(location: Location): string | undefined {
  const segments: string[] = []
  for (const segment of location.path.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment !== '..') segments.push(segment)
    else if (segments.pop() === undefined) return undefined
  }
  const path = `/${segments.join('/')}`
  return location.isDirectory && segments.length > 0 ? `${path}/` : path
}

/** A URL for a message: credentials redacted, no query (it may carry a token) and no fragment. */
function shown(url: string): string {
  return clip(redact(url.replace(/[?#].*$/s, '')))
}
