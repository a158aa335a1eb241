// A static HTTP(S) origin over a local directory, in process, for the HTTP backend and end-to-end tests.
// It serves what media origins serve (HEAD, single byte ranges, keep-alive) and can misbehave on demand.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { resolve, sep } from 'node:path'

export interface HttpOriginOptions {
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string }
  /** Basic auth required below `prefix` (a path without the leading '/', e.g. `private/`). */
  readonly auth?: { readonly prefix: string; readonly user: string; readonly password: string }
  /** Below `prefix`, requests without `?token=<value>` get 403, as CDN token schemes answer. */
  readonly token?: { readonly prefix: string; readonly value: string }
  /** The loopback address to listen on (default 127.0.0.1): 127.0.0.2 makes a second host of the same machine. */
  readonly host?: string
}

export interface HttpOrigin {
  /** The directory served as `/`. */
  readonly root: string
  readonly port: number
  /** `http(s)://<host>:<port>/<path>` (host 127.0.0.1 unless given), each segment of `path` percent-encoded; `auth` adds user:password@. */
  url(path: string, auth?: { user: string; password: string }): string
  /** Answer a Range request with 200 and the whole file, as some origins do. */
  ignoreRange: boolean
  /** Answer HEAD with 405, as some origins do. */
  refuseHead: boolean
  /** Requests so far per decoded path (without the leading '/'), every method counted. */
  requests(path: string): number
  /** Every request so far: method, decoded path, query (`?…`, if any), Range header, whether it had credentials, and the status once answered. */
  readonly log: Array<{ method: string; path: string; query?: string; range?: string; authorization?: true; status?: number }>
  close(): Promise<void>
}

/**
 * Starts the origin on an ephemeral port of 127.0.0.1 (or `options.host`). Besides files below `root`:
 * - `/redirect/<path>` answers 302 to `/<path>` (chain them for several hops);
 * - `/redirect-to/<url>` answers 302 to `<url>`, decoded: an absolute URL, to another origin;
 * - `/loop/<path>` answers 302 to itself, forever;
 * - `/fail-once/<path>` answers 500 the first time, then serves `<path>`;
 * - below `auth.prefix`, requests without the right Basic credentials get 401.
 */
export async function startHttpOrigin(root: string, options: HttpOriginOptions = {}): Promise<HttpOrigin> {
  const counts = new Map<string, number>()
  const log: HttpOrigin['log'] = []
  const failedOnce = new Set<string>()
  // Becomes the returned object: its flags are read on every request, so a test may flip them at any time.
  const flags = { ignoreRange: false, refuseHead: false }
  const sockets = new Set<Socket>()
  const base = resolve(root)

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { pathname, search } = new URL(req.url ?? '/', 'http://origin.invalid')
    const path = decodeURIComponent(pathname.slice(1))
    counts.set(path, (counts.get(path) ?? 0) + 1)
    const entry: HttpOrigin['log'][number] = {
      method: req.method ?? '',
      path,
      ...(search && { query: search }),
      ...(req.headers.range && { range: req.headers.range }),
      ...(req.headers.authorization && { authorization: true }),
    }
    log.push(entry)
    res.on('finish', () => (entry.status = res.statusCode))
    if (req.method !== 'GET' && req.method !== 'HEAD') return end(res, 405)
    if (pathname.startsWith('/redirect/')) return redirect(res, pathname.slice('/redirect'.length))
    if (path.startsWith('redirect-to/')) return redirect(res, path.slice('redirect-to/'.length))
    if (pathname.startsWith('/loop/')) return redirect(res, pathname)
    if (pathname.startsWith('/fail-once/')) {
      if (!failedOnce.has(path)) {
        failedOnce.add(path)
        return end(res, 500)
      }
      return serveFile(req, res, path.slice('fail-once/'.length))
    }
    const { auth, token } = options
    if (token && path.startsWith(token.prefix)) {
      const given = new URL(req.url ?? '/', 'http://origin.invalid').searchParams.get('token')
      if (given !== token.value) return end(res, 403)
    }
    if (auth && path.startsWith(auth.prefix)) {
      const expected = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`
      if (req.headers.authorization !== expected) {
        res.setHeader('www-authenticate', 'Basic realm="origin"')
        return end(res, 401)
      }
    }
    if (req.method === 'HEAD' && flags.refuseHead) return end(res, 405)
    return serveFile(req, res, path)
  }

  const serveFile = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const file = resolve(base, path)
    if (!file.startsWith(base + sep)) return end(res, 403)
    const size = await stat(file).then((s) => (s.isFile() ? s.size : undefined), () => undefined)
    if (size === undefined) return end(res, 404)
    res.setHeader('accept-ranges', 'bytes')
    res.setHeader('content-type', 'application/octet-stream')
    const range = flags.ignoreRange ? undefined : parseRange(req.headers.range, size)
    if (range === 'unsatisfiable') {
      res.setHeader('content-range', `bytes */${size}`)
      return end(res, 416)
    }
    const [start, last] = range ?? [0, size - 1]
    res.statusCode = range ? 206 : 200
    if (range) res.setHeader('content-range', `bytes ${start}-${last}/${size}`)
    res.setHeader('content-length', String(Math.max(0, last - start + 1)))
    if (req.method === 'HEAD' || size === 0) return void res.end()
    createReadStream(file, { start, end: last }).on('error', () => res.destroy()).pipe(res)
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => res.destroy())
  }
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener) : createHttpServer(listener)
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((done) => server.listen(0, host, done))
  const { port } = server.address() as AddressInfo
  const scheme = options.tls ? 'https' : 'http'
  return Object.assign(flags, {
    root: base,
    port,
    url: (path: string, auth?: { user: string; password: string }) => {
      const userinfo = auth ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@` : ''
      return `${scheme}://${userinfo}${host}:${port}/${path.split('/').map(encodeURIComponent).join('/')}`
    },
    requests: (path: string) => counts.get(path) ?? 0,
    log,
    close: () =>
      new Promise<void>((done) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => done())
      }),
  })
}

function end(res: ServerResponse, status: number): void {
  res.statusCode = status
  res.end()
}

function redirect(res: ServerResponse, location: string): void {
  res.setHeader('location', location)
  end(res, 302)
}

/** One range of `bytes=a-b`, `bytes=a-` or `bytes=-n`; undefined for none or a form we ignore (several ranges). */
function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '')
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const suffix = Number(m[2])
    return suffix === 0 || size === 0 ? 'unsatisfiable' : [Math.max(0, size - suffix), size - 1]
  }
  const start = Number(m[1])
  if (start >= size) return 'unsatisfiable'
  return [start, m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)]
}
