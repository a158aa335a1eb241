import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { after, before, describe, it } from 'node:test'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { createHttpBackend } from '../../src/backends/http/index.js'
import type { Backend, BackendContext, Endpoint } from '../../src/backends/types.js'
import { PublishError, type Code } from '../../src/errors.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { makeTestCertificates } from '../servers/tls.js'
import { startUnacceptingListener } from '../servers/unaccepting-listener.js'
import { backendConformance, type ConformanceSetup } from './conformance.js'

const USER = 'viewer'
// Distinctive, so the suite can assert it never shows up in an error message.
const PASSWORD = 'Origin-Pass-5d1e'
const WRONG_PASSWORD = 'Not-The-Pass-0000'
const certificates = makeTestCertificates()
after(() => certificates.remove())

/** The conformance suite against an origin whose whole suite directory needs Basic auth. */
function httpSuite(tls?: { cert: string; key: string }): ConformanceSetup {
  return async (context) => {
    const root = await mkdtemp(join(tmpdir(), 'apubi-http-'))
    const origin = await startHttpOrigin(root, { ...(tls && { tls }), auth: { prefix: 'private/', user: USER, password: PASSWORD } })
    const withCa = { ...context, tlsCa: certificates.ca }
    const endpoint = (password: string): Endpoint => ({ scheme: tls ? 'https' : 'http', host: '127.0.0.1', port: origin.port, user: USER, password })
    const backend = createHttpBackend(endpoint(PASSWORD), withCa)
    return {
      backend,
      root: 'private/suite',
      network: true,
      secret: PASSWORD,
      wrongPassword: () => ({ backend: createHttpBackend(endpoint(WRONG_PASSWORD), withCa), password: WRONG_PASSWORD }),
      seed: (path, body) => seed(origin, path, body),
      close: async () => {
        await backend.close()
        await origin.close()
        await rm(root, { recursive: true, force: true })
      },
    }
  }
}

async function seed(origin: HttpOrigin, path: string, body: Readable): Promise<void> {
  const file = join(origin.root, path)
  await mkdir(dirname(file), { recursive: true })
  await pipeline(body, createWriteStream(file))
}

backendConformance('http (node:http origin)', httpSuite())
backendConformance('https (node:https origin, test CA)', httpSuite(certificates))

const never = new AbortController().signal
const context = (overrides: Partial<BackendContext> = {}): BackendContext => ({
  hosts: createHostLimiter(4),
  timeoutMs: 4_000,
  ssh: { knownHostsFile: '/nonexistent/known_hosts', hostKeyPolicy: 'strict' },
  s3: { region: 'us-east-1', buckets: {} },
  ...overrides,
})

async function bytesOf(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

async function rejectsWith(promise: Promise<unknown>, code: Code, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof PublishError, `not a PublishError: ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (message) assert.match(e.message, message)
    assert.doesNotMatch(e.message, new RegExp(PASSWORD))
    return true
  })
}

describe('http backend', () => {
  const FILE = randomBytes(3 * 1024 * 1024 + 17)
  let root: string
  let origin: HttpOrigin
  let backend: Backend
  const opened: Array<{ close(): Promise<void> }> = []
  const open = (endpoint: Partial<Endpoint>, overrides: Partial<BackendContext> = {}): Backend => {
    const b = createHttpBackend({ scheme: 'http', host: '127.0.0.1', port: origin.port, ...endpoint }, context(overrides))
    opened.push(b)
    return b
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'apubi-http-'))
    await mkdir(join(root, 'pub'), { recursive: true })
    await writeFile(join(root, 'pub/file.bin'), FILE)
    await writeFile(join(root, 'pub/empty.bin'), '')
    origin = await startHttpOrigin(root, { auth: { prefix: 'private/', user: USER, password: PASSWORD } })
    backend = open({})
  })
  after(async () => {
    for (const b of opened) await b.close()
    await origin.close()
    await rm(root, { recursive: true, force: true })
  })

  /** The requests the origin saw for `path` since `from`. */
  const seen = (path: string, from: number) => origin.log.slice(from).filter((r) => r.path === path)

  it('resumes from an offset with a Range request answered 206', async () => {
    const from = origin.log.length
    const offset = 1_234_567
    assert.deepEqual(await bytesOf(await backend.read('pub/file.bin', never, offset)), FILE.subarray(offset))
    assert.deepEqual(seen('pub/file.bin', from), [{ method: 'GET', path: 'pub/file.bin', range: `bytes=${offset}-`, status: 206 }])
  })

  it('still starts at the offset when the server ignores Range and sends the whole file', async (t) => {
    origin.ignoreRange = true
    t.after(() => (origin.ignoreRange = false))
    const from = origin.log.length
    for (const offset of [1, 65_536, FILE.length - 1]) {
      assert.deepEqual(await bytesOf(await backend.read('pub/file.bin', never, offset)), FILE.subarray(offset), `offset ${offset}`)
    }
    assert.deepEqual(seen('pub/file.bin', from).map((r) => r.status), [200, 200, 200])
  })

  it('reads nothing, without error, from the very end of a file', async () => {
    assert.equal((await bytesOf(await backend.read('pub/file.bin', never, FILE.length))).length, 0)
  })

  it('stats with HEAD, and with a one-byte GET where HEAD is refused', async (t) => {
    let from = origin.log.length
    assert.deepEqual(await backend.stat('pub/file.bin', never), { path: 'pub/file.bin', type: 'file', size: FILE.length })
    assert.deepEqual(seen('pub/file.bin', from).map((r) => [r.method, r.status]), [['HEAD', 200]])

    origin.refuseHead = true
    t.after(() => (origin.refuseHead = false))
    from = origin.log.length
    assert.deepEqual(await backend.stat('pub/file.bin', never), { path: 'pub/file.bin', type: 'file', size: FILE.length })
    assert.deepEqual(await backend.stat('pub/empty.bin', never), { path: 'pub/empty.bin', type: 'file', size: 0 })
    assert.deepEqual(
      origin.log.slice(from).map((r) => [r.method, r.path, r.range, r.status]),
      [
        ['HEAD', 'pub/file.bin', undefined, 405],
        ['GET', 'pub/file.bin', 'bytes=0-0', 206],
        ['HEAD', 'pub/empty.bin', undefined, 405],
        ['GET', 'pub/empty.bin', 'bytes=0-0', 416],
      ],
    )
  })

  it('follows redirects for stat and read', async () => {
    const path = 'redirect/redirect/redirect/pub/file.bin'
    assert.deepEqual(await backend.stat(path, never), { path, type: 'file', size: FILE.length })
    assert.deepEqual(await bytesOf(await backend.read(path, never, 10)), FILE.subarray(10))
  })

  it('gives up on a redirect loop with ERR_TRANSFER after 5 hops', async () => {
    const from = origin.log.length
    await rejectsWith(backend.stat('loop/pub/file.bin', never), 'ERR_TRANSFER', /more than 5 redirects/)
    assert.equal(seen('loop/pub/file.bin', from).length, 6)
  })

  it('maps 404 to ERR_NOT_FOUND, naming the URL', async () => {
    await rejectsWith(backend.stat('pub/missing.bin', never), 'ERR_NOT_FOUND', /stat http:\/\/127\.0\.0\.1:\d+\/pub\/missing\.bin: HTTP 404/)
    await rejectsWith(backend.read('pub/missing.bin', never), 'ERR_NOT_FOUND')
  })

  it('maps 401 to ERR_AUTH, without and with a wrong password', async () => {
    await mkdir(join(root, 'private'), { recursive: true })
    await writeFile(join(root, 'private/secret.bin'), 'secret')
    await rejectsWith(backend.stat('private/secret.bin', never), 'ERR_AUTH', /HTTP 401/)
    await rejectsWith(open({ user: USER, password: WRONG_PASSWORD }).read('private/secret.bin', never), 'ERR_AUTH')
    assert.equal((await bytesOf(await open({ user: USER, password: PASSWORD }).read('private/secret.bin', never))).toString(), 'secret')
  })

  it('maps a 500 to ERR_TRANSFER, which a later attempt gets past', async () => {
    await rejectsWith(backend.read('fail-once/pub/file.bin', never), 'ERR_TRANSFER', /HTTP 500/)
    assert.ok(new PublishError('ERR_TRANSFER').retryable)
    assert.deepEqual(await bytesOf(await backend.read('fail-once/pub/file.bin', never)), FILE)
  })

  it('lists no directories, pointing at manifests instead', async () => {
    await rejectsWith(backend.list('pub', never), 'ERR_NOT_A_DIRECTORY', /give an HLS or DASH manifest URL/)
  })

  it('maps a refused connection to ERR_UNREACHABLE', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number }
        server.close(() => resolve(free))
      })
    })
    await rejectsWith(open({ port }).stat('pub/file.bin', never), 'ERR_UNREACHABLE', /ECONNREFUSED/)
  })

  it('maps a connection that is never accepted to ERR_UNREACHABLE, saying it was the connect timeout', async (t) => {
    const { port, close } = await startUnacceptingListener()
    t.after(close)
    await rejectsWith(open({ port }, { timeoutMs: 300 }).stat('pub/file.bin', never), 'ERR_UNREACHABLE', /no connection within 300 ms \(connect timeout\)/)
  })

  it('maps a server that never answers to ERR_TRANSFER after the timeout', async (t) => {
    const sockets: Socket[] = []
    const silent = createServer((socket) => void sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      for (const s of sockets) s.destroy()
      silent.close()
    })
    const { port } = silent.address() as { port: number }
    const started = Date.now()
    await rejectsWith(open({ port }, { timeoutMs: 300 }).stat('pub/file.bin', never), 'ERR_TRANSFER', /no data for 300 ms on an open connection \(idle timeout\)/)
    assert.ok(Date.now() - started < 3_000)
  })

  it('stops with ERR_SHUTDOWN when aborted mid-read, and frees the host slot', async () => {
    const abort = new AbortController()
    const hosts = createHostLimiter(1)
    const reader = open({}, { hosts })
    const stream = await reader.read('pub/file.bin', abort.signal)
    abort.abort()
    await rejectsWith(bytesOf(stream), 'ERR_SHUTDOWN')
    // One slot per host: a leaked one would leave this read waiting.
    assert.equal((await bytesOf(await reader.read('pub/empty.bin', never))).length, 0)
  })

  describe('over TLS', () => {
    let tlsRoot: string
    let trusted: HttpOrigin
    let stranger: HttpOrigin
    const secure = (o: HttpOrigin, overrides: Partial<BackendContext> = {}) => open({ scheme: 'https', port: o.port }, overrides)

    before(async () => {
      tlsRoot = await mkdtemp(join(tmpdir(), 'apubi-https-'))
      await writeFile(join(tlsRoot, 'a.bin'), 'over tls')
      trusted = await startHttpOrigin(tlsRoot, { tls: certificates })
      stranger = await startHttpOrigin(tlsRoot, { tls: certificates.untrusted })
    })
    after(async () => {
      await trusted.close()
      await stranger.close()
      await rm(tlsRoot, { recursive: true, force: true })
    })

    it('reads from an origin whose certificate the configured CA signed', async () => {
      assert.equal((await bytesOf(await secure(trusted, { tlsCa: certificates.ca }).read('a.bin', never))).toString(), 'over tls')
    })

    it('refuses a certificate of another CA with ERR_AUTH naming the TLS certificate', async () => {
      await rejectsWith(secure(stranger, { tlsCa: certificates.ca }).stat('a.bin', never), 'ERR_AUTH', /TLS certificate/)
    })

    it('refuses the test CA when it is not configured: Node\'s bundle alone does not trust it', async () => {
      await rejectsWith(secure(trusted).stat('a.bin', never), 'ERR_AUTH', /TLS certificate/)
    })

    it('follows a redirect to another origin without sending it the credentials', async () => {
      const b = open({ user: USER, password: PASSWORD }, { tlsCa: certificates.ca })
      const from = trusted.log.length
      assert.equal((await bytesOf(await b.read(`redirect-to/https://127.0.0.1:${trusted.port}/a.bin`, never))).toString(), 'over tls')
      assert.deepEqual(trusted.log.slice(from), [{ method: 'GET', path: 'a.bin', status: 200 }])
    })

    it('refuses a redirect to another scheme with ERR_POLICY_DENIED', async () => {
      await rejectsWith(backend.stat(`redirect-to/ftp://127.0.0.1:${trusted.port}/a.bin`, never), 'ERR_POLICY_DENIED', /only http and https/)
    })
  })
})
