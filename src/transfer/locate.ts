import { readlinkSync, realpathSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isScheme, type Endpoint, type Scheme } from '../backends/index.js'
import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'

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

const absoluteUrl = /^[a-z][a-z0-9+.-]*:/i

/** `ftpes` is FTP with explicit TLS (AUTH TLS on the plain port), `ftps` implicit TLS. */
const defaultPorts: Readonly<Record<Scheme, number>> = { file: 0, ftp: 21, ftpes: 21, ftps: 990, sftp: 22, http: 80, https: 443, s3: 0 }

/**
 * A DestinationAsset as an absolute URL: a relative path or identifier is taken under `cdnBase`.
 * @throws PublishError ERR_POLICY_DENIED when a relative path climbs out of the base.
 */
export function resolveDestination(destination: string, cdnBase: string): string {
  if (absoluteUrl.test(destination)) return destination
  const segments = destination.split('/').filter((s) => s !== '' && s !== '.')
  if (segments.includes('..')) {
    throw new PublishError('ERR_POLICY_DENIED', `Relative destination ${destination} must not contain '..'`)
  }
  const trailing = destination.endsWith('/') && segments.length > 0 ? '/' : ''
  return cdnBase + segments.map(encodeURIComponent).join('/') + trailing
}

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
  if (!isScheme(scheme)) throw new PublishError('ERR_UNSUPPORTED_SCHEME', `Unsupported URL scheme ${scheme}: in ${redact(url)}`)
  const isDirectory = parsed.pathname.endsWith('/')
  if (scheme === 'file') {
    if (parsed.host !== '' && parsed.host !== 'localhost') {
      throw new PublishError('ERR_REQUEST_INVALID', `file:// URLs name no host: ${redact(url)}`)
    }
    let path: string
    try {
      path = fileURLToPath(parsed)
    } catch (e) {
      // An encoded '/' (%2F) or a malformed escape (%zz): the client's mistake, not ours.
      throw new PublishError('ERR_REQUEST_INVALID', `Not a usable file URL: ${redact(url)}`, { cause: e })
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
    throw new PublishError('ERR_REQUEST_INVALID', `Malformed percent-encoding in ${redact(url)}`, { cause: e })
  }
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/**
 * Where `file://` may read and write. Paths are compared after resolving `..` and symlinks of the
 * deepest existing ancestor, so a link inside a root cannot lead out of it.
 */
export function createLocationPolicy(fileRoots: readonly string[]) {
  const roots = fileRoots.map((root) => realpathOrSelf(resolve(root)))
  return {
    /** @throws PublishError ERR_POLICY_DENIED */
    check(location: Location): void {
      if (location.endpoint.scheme !== 'file') return
      const real = realpathOfDeepestAncestor(location.path)
      const inside = roots.some((root) => {
        const rel = relative(root, real)
        return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep))
      })
      if (!inside) throw new PublishError('ERR_POLICY_DENIED', `file://${location.path} is outside the allowed file roots`)
    },
  }
}

export type LocationPolicy = ReturnType<typeof createLocationPolicy>

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/** Linux gives up after 40 symlinks in one path (ELOOP); so do we. */
const MAX_SYMLINK_HOPS = 40

function realpathOfDeepestAncestor(path: string): string {
  let current = resolve(path)
  const rest: string[] = []
  for (let hops = 0; ; ) {
    try {
      return join(realpathSync(current), ...rest)
    } catch {
      // realpath fails on a dangling symlink, yet a write through it lands at its target: follow it.
      const target = readlinkOrUndefined(current)
      if (target !== undefined && hops++ < MAX_SYMLINK_HOPS) {
        current = resolve(dirname(current), target)
        continue
      }
      const parent = dirname(current)
      if (parent === current) return resolve(path)
      rest.unshift(basename(current))
      current = parent
    }
  }
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path)
  } catch {
    return undefined
  }
}
