import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { rootCertificates } from 'node:tls'
import { PublishError, type Code } from '../../errors.js'
import { REDACTED } from '../../observability/index.js'
import { checkedLookup } from '../checked-lookup.js'
import { encodePath, enumeratePackage } from '../../packages/index.js'
import { networkErrorCode } from '../network-errors.js'
import type { Backend, BackendContext, BackendFactory, Endpoint, Entry, PackageEntry } from '../types.js'

/**
 * HTTP and HTTPS origins as read-only sources (`https://user:password@host:port/path`). A path is
 * the URL path without its leading '/', decoded, as src/transfer/locate.ts gives it; each segment is
 * encoded again on the way out, so `what?.txt` is a name, not a query. HTTP lists no directories:
 * a package is enumerated from its HLS or DASH manifest instead (`listPackage`).
 */
export const createHttpBackend: BackendFactory = (endpoint, context) => new HttpBackend(endpoint, context)

type Operation = 'stat' | 'list' | 'read' | 'write' | 'rename' | 'remove' | 'mkdir' | 'listPackage'

/** What one request brought back: the response, its URL after redirects, and the host slot it holds. */
interface Exchange {
  readonly res: IncomingMessage
  readonly url: URL
  readonly release: () => void
}

// Fewer hops than browsers (20) or curl (50) allow: a longer chain would only hide a broken origin longer.
const MAX_REDIRECTS = 5
// The host limiter is the real cap (a slot per request in flight); this only bounds what a bug could open.
const MAX_SOCKETS_PER_HOST = 32
// Idle keep-alive sockets hold no host slot, but each one is a file descriptor on both sides.
const MAX_FREE_SOCKETS = 4
// Bounds what a download buffers ahead of a slow consumer; beyond it TCP backpressure holds the server.
const READ_BUFFER_BYTES = 1 << 20
// A manifest or playlist is text of a few MiB at most; a larger "manifest" is a mistake, not a package.
const MAX_MANIFEST_BYTES = 16 << 20
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

function origin(endpoint: Endpoint): string {
  const host = endpoint.host.includes(':') && !endpoint.host.startsWith('[') ? `[${endpoint.host}]` : endpoint.host
  return `${endpoint.scheme}://${host}:${endpoint.port}`
}

/** `scheme://host:port`, the port always written: the key of the host limiter. */
function slotKey(url: URL): string {
  return `${url.protocol}//${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`
}

/** A URL for a message: no credentials, and no query, which may carry a token. */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`
}

/** Our code for an HTTP status that is not a success. */
function codeForStatus(status: number): Code {
  if (status === 401) return 'ERR_AUTH'
  if (status === 404 || status === 410) return 'ERR_NOT_FOUND'
  if (status === 408 || status === 429 || status >= 500) return 'ERR_TRANSFER'
  // 403, and what else a server refuses for good (400, 405, 451…): another attempt changes nothing.
  if (status >= 400) return 'ERR_PERMISSION'
  return 'ERR_TRANSFER' // a 3xx without Location, or a 1xx/2xx we did not ask for
}

/** Our code for a socket or TLS failure: what remains (reset, timeout, broken body) may pass later. */
function codeForError(e: unknown): Code {
  return networkErrorCode(e) ?? 'ERR_TRANSFER'
}

// The total size in a Content-Range (`bytes 0-0/1234`, or `bytes */1234` on a 416); undefined when unknown.
function rangeTotal(res: IncomingMessage): number | undefined {
  const total = /\/(\d+)\s*$/.exec(res.headers['content-range'] ?? '')?.[1]
  return total === undefined ? undefined : Number(total)
}

function contentLength(res: IncomingMessage): number | undefined {
  const length = res.headers['content-length']
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined
}

class HttpBackend implements Backend {
  readonly scheme: 'http' | 'https'
  readonly features = { atomicRename: false, writable: false, append: false }
  /** `scheme://host:port`, as messages name it. */
  private readonly base: string
  /** The same as URL.origin spells it (without a default port), to compare with redirect targets. */
  private readonly baseOrigin: string
  private readonly agents: { 'http:': HttpAgent; 'https:': HttpsAgent }
  /** Releases of the host slots held by requests in flight, freed at once by `close`. */
  private readonly held = new Set<() => void>()
  private readonly closing = new AbortController()
  /** Paths whose reference in a listed package carries its own query (a signed URL): sent instead of the endpoint's. */
  private readonly queries = new Map<string, string>()

  constructor(
    private readonly endpoint: Endpoint,
    private readonly context: BackendContext,
  ) {
    this.scheme = endpoint.scheme === 'https' ? 'https' : 'http'
    this.base = origin(endpoint)
    this.baseOrigin = new URL(this.base).origin
    const pool = { keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, maxFreeSockets: MAX_FREE_SOCKETS, timeout: context.timeoutMs }
    // `ca` replaces Node's bundle rather than adding to it: keep the bundle beside the configured CA.
    const ca = context.tlsCa ? { ca: [...rootCertificates, context.tlsCa] } : {}
    this.agents = { 'http:': new HttpAgent(pool), 'https:': new HttpsAgent({ ...pool, ...ca }) }
  }

  /** HEAD; where HEAD is refused (405, 501) or tells no size, a GET of the first byte. */
  async stat(path: string, signal: AbortSignal): Promise<Entry> {
    const head = await this.fetch('stat', path, signal, 'HEAD', {}, [405, 501])
    const size = head.res.statusCode === 200 ? contentLength(head.res) : undefined
    head.res.resume()
    head.release()
    return { path, type: 'file', size: size ?? (await this.probeSize(path, signal)) }
  }

  async list(dir: string): Promise<Entry[]> {
    throw this.fail('ERR_NOT_A_DIRECTORY', 'list', dir, 'HTTP has no directory listing; give an HLS or DASH manifest URL')
  }

  /**
   * A GET, with `Range: bytes=offset-` past the start. A server answering 200 to a Range sends the
   * whole file: the first `offset` bytes are then dropped here, so the stream starts at `offset` anyway.
   */
  async read(path: string, signal: AbortSignal, offset = 0): Promise<Readable> {
    const headers = offset > 0 ? { range: `bytes=${offset}-` } : {}
    const { res, release } = await this.fetch('read', path, signal, 'GET', headers, offset > 0 ? [416] : [])
    let skip = 0
    try {
      if (res.statusCode === 416) {
        // Reading from the very end of the file: nothing left, which is no error.
        if (rangeTotal(res) !== offset) throw this.fail('ERR_TRANSFER', 'read', path, `no byte ${offset} (the file has ${rangeTotal(res) ?? 'an unknown number of'} bytes)`)
        res.resume()
        release()
        return Readable.from([])
      }
      if (res.statusCode === 206) {
        const start = /^bytes (\d+)-/.exec(res.headers['content-range'] ?? '')?.[1]
        if (Number(start) !== offset) throw this.fail('ERR_TRANSFER', 'read', path, `asked for bytes ${offset}-, got ${res.headers['content-range'] ?? 'no Content-Range'}`)
      } else {
        skip = offset
      }
    } catch (e) {
      res.destroy()
      release()
      throw e
    }
    return this.body(res, release, path, signal, skip)
  }

  async write(path: string, body: Readable): Promise<void> {
    body.destroy()
    throw this.readOnly('write', path)
  }

  async rename(from: string): Promise<void> {
    throw this.readOnly('rename', from)
  }

  async remove(path: string): Promise<void> {
    throw this.readOnly('remove', path)
  }

  async mkdir(path: string): Promise<void> {
    throw this.readOnly('mkdir', path)
  }

  /**
   * The files of the HLS or DASH package whose manifest is at `manifestPath` (see packages/), each
   * playlist with the bytes read for the listing. A reference's own query is kept for its later reads.
   */
  async listPackage(manifestPath: string, signal: AbortSignal): Promise<PackageEntry[]> {
    const { files } = await enumeratePackage(this.base, manifestPath, (path, query) => {
      if (query) this.queries.set(path, query)
      return this.readBytes(path, signal)
    })
    for (const { path, query } of files) if (query) this.queries.set(path, query)
    return files.map(({ rel, path, body }) => ({ rel, path, ...(body && { body }) }))
  }

  async close(): Promise<void> {
    this.closing.abort()
    this.agents['http:'].destroy()
    this.agents['https:'].destroy()
    // The streams of destroyed sockets free their slots as they close; the limiter must not wait for that.
    for (const release of [...this.held]) release()
  }

  private get closed(): boolean {
    return this.closing.signal.aborted
  }

  /**
   * `method` on `path`, following redirects, resolving once the response headers arrived with a
   * 2xx status or one of `accept`. Any other status rejects with its code, its body discarded.
   */
  private async fetch(op: Operation, path: string, signal: AbortSignal, method: 'GET' | 'HEAD', headers: OutgoingHttpHeaders, accept: number[]): Promise<Exchange> {
    const requested = new URL(`${this.base}/${encodePath(path)}${this.queries.get(path) ?? this.endpoint.query ?? ''}`)
    let url = requested
    for (let hops = 0; ; hops++) {
      const exchange = await this.exchange(op, path, url, method, headers, signal)
      const { res, release } = exchange
      const status = res.statusCode ?? 0
      if ((status >= 200 && status < 300) || accept.includes(status)) return exchange
      res.resume()
      release()
      const location = res.headers.location
      if (!REDIRECT_STATUSES.has(status) || location === undefined) {
        const where = url === requested ? '' : ` at ${shown(url)}`
        throw this.fail(codeForStatus(status), op, path, `HTTP ${status} ${res.statusMessage ?? ''}${where}`.trim())
      }
      if (hops >= MAX_REDIRECTS) throw this.fail('ERR_TRANSFER', op, path, `more than ${MAX_REDIRECTS} redirects (last to ${shown(url)})`)
      let next: URL
      try {
        next = new URL(location, url)
      } catch (e) {
        throw this.fail('ERR_TRANSFER', op, path, `HTTP ${status} with an unusable Location`, e)
      }
      url = this.followRedirect(url, next)
    }
  }

  /**
   * Where a redirect from `from` may lead: the one place a redirect is judged. Only HTTP and HTTPS
   * are followed, and only where the location policy allows a source to be (the addresses of a host
   * name are judged as the connection is made).
   * @throws PublishError ERR_POLICY_DENIED
   */
  private followRedirect(from: URL, to: URL): URL {
    if (to.protocol !== 'http:' && to.protocol !== 'https:') {
      throw new PublishError('ERR_POLICY_DENIED', `redirect from ${shown(from)} to a ${to.protocol} URL: only http and https are followed`)
    }
    try {
      this.context.guard?.checkUrl(to.href)
    } catch (e) {
      if (e instanceof PublishError) throw new PublishError(e.code, `redirect from ${shown(from)}: ${e.message}`, { cause: e })
      throw e
    }
    return to
  }

  /**
   * One request in a host slot. The slot is the caller's to release once the response is done with.
   * A kept-alive socket the server closed just as we reused it fails at once: tried once more on a new one.
   */
  private async exchange(op: Operation, path: string, url: URL, method: string, headers: OutgoingHttpHeaders, signal: AbortSignal, retried = false): Promise<Exchange> {
    let release: () => void
    try {
      if (this.closed) throw new Error('backend closed')
      release = this.hold(await this.context.hosts.acquire(slotKey(url), AbortSignal.any([signal, this.closing.signal])))
    } catch (e) {
      throw this.translate(e, op, path, signal)
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const agent = this.agents[url.protocol as 'http:' | 'https:']
    // A new socket connects to an address the policy checked for this URL (a kept-alive one already did).
    const lookup = checkedLookup(this.context, { scheme: url.protocol === 'https:' ? 'https' : 'http', port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) })
    return new Promise<Exchange>((resolve, reject) => {
      const options = { method, headers: { ...headers, ...this.credentialsFor(url) }, agent, signal, timeout: this.context.timeoutMs, ...(lookup && { lookup }) }
      const req = send(url, options)
      let response: IncomingMessage | undefined
      req.on('response', (res) => {
        response = res
        resolve({ res, url, release })
      })
      // Also after the response: a socket error then reaches `res` as well, which reports it.
      req.on('error', (e) => {
        release()
        const stale = !response && !retried && req.reusedSocket && ['ECONNRESET', 'EPIPE'].includes((e as NodeJS.ErrnoException).code ?? '')
        if (stale && !signal.aborted) resolve(this.exchange(op, path, url, method, headers, signal, true))
        else reject(this.translate(e, op, path, signal))
      })
      req.on('timeout', () => {
        // A consumer that stopped reading is not a stalled server: wait for it another period.
        if (response?.isPaused()) return void req.setTimeout(this.context.timeoutMs)
        const stalled = Object.assign(new Error(`no data for ${this.context.timeoutMs} ms`), { code: 'ETIMEDOUT' })
        ;(response ?? req).destroy(stalled)
      })
      req.end()
    })
  }

  /** Basic auth for the origin the credentials were given for; never for where a redirect points. */
  private credentialsFor(url: URL): OutgoingHttpHeaders {
    const { user, password } = this.endpoint
    if (user === undefined || url.origin !== this.baseOrigin) return {}
    return { authorization: `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}` }
  }

  /** Tracks a host slot so that `close` can free it; releasing stays idempotent. */
  private hold(release: () => void): () => void {
    const once = (): void => {
      this.held.delete(once)
      release()
    }
    this.held.add(once)
    return once
  }

  /** The response body as the returned stream, from which `skip` bytes are dropped first. */
  private body(res: IncomingMessage, release: () => void, path: string, signal: AbortSignal, skip: number): Readable {
    const out = new SkipBytes(skip, () => this.fail('ERR_TRANSFER', 'read', path, `the body ended before byte ${skip}`))
    const fail = (e: unknown): void => void out.destroy(this.translate(e, 'read', path, signal))
    const abort = (): void => fail(signal.reason)
    signal.addEventListener('abort', abort, { once: true })
    res.on('error', fail)
    res.on('close', () => {
      if (!res.complete) fail(new Error('connection closed before the end of the body'))
    })
    out.once('close', () => {
      signal.removeEventListener('abort', abort)
      // Closed before the end: the server may still be sending, so the socket cannot be reused.
      if (!res.complete) res.destroy()
      release()
    })
    res.pipe(out)
    return out
  }

  /** The size from a GET of byte 0 (206 or 416 with a Content-Range, or a 200's length), else by counting the body. */
  private async probeSize(path: string, signal: AbortSignal): Promise<number> {
    const { res, release } = await this.fetch('stat', path, signal, 'GET', { range: 'bytes=0-0' }, [416])
    try {
      const size = res.statusCode === 200 ? contentLength(res) : rangeTotal(res)
      if (size !== undefined) return size
      let counted = 0
      for await (const chunk of res) counted += (chunk as Buffer).length
      return counted
    } catch (e) {
      throw this.translate(e, 'stat', path, signal)
    } finally {
      // A 206 or 416 body is a byte or a line: read it to keep the socket; a 200 body may be huge.
      if (res.statusCode === 200 && !res.complete) res.destroy()
      else res.resume()
      release()
    }
  }

  /** A manifest or playlist, refused beyond MAX_MANIFEST_BYTES. */
  private async readBytes(path: string, signal: AbortSignal): Promise<Buffer> {
    const stream = await this.read(path, signal)
    const parts: Buffer[] = []
    let bytes = 0
    for await (const chunk of stream) {
      bytes += (chunk as Buffer).length
      if (bytes > MAX_MANIFEST_BYTES) {
        stream.destroy()
        throw this.fail('ERR_REQUEST_INVALID', 'listPackage', path, `larger than ${MAX_MANIFEST_BYTES} bytes: not a manifest`)
      }
      parts.push(chunk as Buffer)
    }
    return Buffer.concat(parts)
  }

  private readOnly(op: Operation, path: string): PublishError {
    return this.fail('ERR_PERMISSION', op, path, 'HTTP sources are read-only')
  }

  private translate(e: unknown, op: Operation, path: string, signal: AbortSignal): PublishError {
    if (e instanceof PublishError) return e
    if (signal.aborted || this.closed) return this.fail('ERR_SHUTDOWN', op, path, signal.aborted ? 'aborted' : 'backend closed', e)
    const code = codeForError(e)
    const errno = (e as NodeJS.ErrnoException).code
    const why = e instanceof Error ? e.message : String(e)
    if (code === 'ERR_AUTH') return this.fail(code, op, path, `TLS certificate not accepted (${errno}): ${why}`, e)
    return this.fail(code, op, path, errno && !why.includes(errno) ? `${errno}: ${why}` : why, e)
  }

  /** An error naming the operation, the URL without credentials, and why; the password never shows. */
  private fail(code: Code, op: Operation, path: string, why: string, cause?: unknown): PublishError {
    const { password } = this.endpoint
    const reason = password ? why.split(password).join(REDACTED) : why
    return new PublishError(code, `${op} ${this.base}/${encodePath(path)}: ${reason}`, { cause })
  }
}

/** Drops the first `remaining` bytes, for a server that answered a Range request with the whole file. */
class SkipBytes extends Transform {
  constructor(
    private remaining: number,
    private readonly tooShort: () => Error,
  ) {
    super({ highWaterMark: READ_BUFFER_BYTES })
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    if (this.remaining >= chunk.length) {
      this.remaining -= chunk.length
      return done()
    }
    const rest = this.remaining > 0 ? chunk.subarray(this.remaining) : chunk
    this.remaining = 0
    done(null, rest)
  }

  override _flush(done: TransformCallback): void {
    done(this.remaining > 0 ? this.tooShort() : null)
  }
}
