// HTTPS on the SOAP endpoint: a round trip with the CLI's client trusting the test CA, the WSDL's
// https address, client certificates (mTLS) refused or accepted at the handshake, and SIGHUP
// swapping the certificate for new connections while a task runs on and open connections stay.
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { X509Certificate, randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { exchange, parseResponses, type Response } from '../hostile/exchange.js'
import { freePort } from '../servers/apubi-server.js'
import { eventually } from './helpers.js'

const cli = new URL('../../src/cli/index.ts', import.meta.url).pathname

/**
 * A throwaway PKI made with openssl: a server CA with two server certificates for 127.0.0.1 (the
 * second is the renewal), a client CA with a client certificate, and a rogue CA with another one.
 */
function makePki(dir: string) {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  const ca = (name: string) => run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`)
  const leaf = (name: string, cn: string, issuer: string, ext: string) => {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`)
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', ext)
  }
  ca('server-ca')
  ca('client-ca')
  ca('rogue-ca')
  leaf('server', 'apubi first', 'server-ca', 'server.ext')
  leaf('renewed', 'apubi renewed', 'server-ca', 'server.ext')
  leaf('wfm', 'wfm', 'client-ca', 'client.ext')
  leaf('rogue', 'wfm', 'rogue-ca', 'client.ext')
  const pem = (name: string) => readFileSync(join(dir, name))
  const fingerprint = (name: string) => new X509Certificate(pem(`${name}.crt`)).fingerprint256
  return { dir, pem, fingerprint, file: (name: string) => join(dir, name) }
}
type Pki = ReturnType<typeof makePki>

interface TlsServer {
  readonly port: number
  readonly url: string
  readonly dataDir: string
  readonly fileRoot: string
  readonly process: ChildProcess
  output(): string
  stop(): Promise<void>
}

/**
 * `apubi serve` over TLS as a child process, ready once it logs that it listens. (The suite's
 * startServer probes over plain HTTP, which a TLS endpoint does not speak.)
 */
async function startTlsServer(env: Record<string, string>): Promise<TlsServer> {
  const port = await freePort()
  const base = mkdtempSync(join(tmpdir(), 'apubi-tls-server-'))
  const dataDir = join(base, 'data')
  const fileRoot = join(base, 'files')
  mkdirSync(fileRoot, { recursive: true })
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve'], {
    env: { ...process.env, APUBI_PORT: String(port), APUBI_HOST: '127.0.0.1', APUBI_DATA_DIR: dataDir, APUBI_FILE_ROOTS: `${fileRoot}:${dataDir}`, APUBI_POLL_MS: '50', APUBI_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await eventually(() => {
    if (child.exitCode !== null) throw new Error(`server exited at start:\n${output}`)
    return output.includes('"msg":"apubi-server listening"') || undefined
  }, 30_000, 50)
  return {
    port,
    url: `https://127.0.0.1:${port}/apubi`,
    dataDir,
    fileRoot,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
      rmSync(base, { recursive: true, force: true })
    },
  }
}

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/'
const envelope = (operation: string, fields: string) =>
  `<soap:Envelope xmlns:soap="${SOAP}"><soap:Body><${operation} xmlns="wfm:APUBI/v1/schemas">${fields}</${operation}></soap:Body></soap:Envelope>`
const post = (body: string) => Buffer.from(`POST /apubi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
const GET_WSDL = Buffer.from('GET /apubi?wsdl HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')

/** One request on a new TLS connection; the answer, or none when the handshake was refused. */
async function ask(port: number, tls: ConnectionOptions, request: Buffer): Promise<Response | undefined> {
  const answer = await exchange({ port, tls, request, timeoutMs: 30_000 })
  return answer.responses[0]
}

/** A TLS connection held open, for several requests in turn. */
async function openConnection(port: number, tls: ConnectionOptions): Promise<{ socket: TLSSocket; ask(request: Buffer): Promise<Response> }> {
  const socket = connectTls({ port, host: '127.0.0.1', ...tls })
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
  let received: Buffer = Buffer.alloc(0)
  let waiting: ((r: Response) => void) | undefined
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    const { responses, leftover } = parseResponses(received)
    if (responses[0] && waiting) {
      received = leftover
      waiting(responses[0])
    }
  })
  return {
    socket,
    ask: (request) =>
      new Promise<Response>((resolve, reject) => {
        waiting = resolve
        socket.once('close', () => reject(new Error('the connection closed')))
        socket.write(request)
      }),
  }
}

/** The certificate a new connection is shown (verification off: only the fingerprint matters here). */
async function servedFingerprint(port: number): Promise<string> {
  const socket = connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false })
  try {
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
    return socket.getPeerCertificate().fingerprint256
  } finally {
    socket.destroy()
  }
}

const valueOf = (response: Response | undefined, name: string) => new RegExp(`<ns:${name}>([^<]*)</ns:${name}>`).exec(response?.body.toString() ?? '')?.[1]

describe('HTTPS', () => {
  let pki: Pki

  before(() => {
    pki = makePki(mkdtempSync(join(tmpdir(), 'apubi-pki-')))
  })
  after(() => rmSync(pki.dir, { recursive: true, force: true }))

  describe('with a certificate and key', () => {
    let server: TlsServer
    before(async () => {
      // Short timeouts, for the slow-client tests below.
      server = await startTlsServer({ APUBI_TLS_CERT: pki.file('server.crt'), APUBI_TLS_KEY: pki.file('server.key'), APUBI_HEADERS_TIMEOUT_MS: '1000', APUBI_REQUEST_TIMEOUT_MS: '2000' })
    })
    after(() => server.stop())

    it('serves the WSDL over HTTPS with an https:// endpoint address, to a client trusting the CA', async () => {
      const response = await ask(server.port, { ca: pki.pem('server-ca.crt') }, GET_WSDL)
      assert.equal(response?.status, 200)
      assert.match(response!.body.toString(), new RegExp(`location="https://127\\.0\\.0\\.1:${server.port}/apubi"`))
      assert.equal(await servedFingerprint(server.port), pki.fingerprint('server'))
      assert.match(server.output(), new RegExp(`"fingerprint256":"${pki.fingerprint('server')}".*"msg":"serving HTTPS"`))
    })

    it('exports when its certificate expires, for an alert before it does', async () => {
      const response = await ask(server.port, { ca: pki.pem('server-ca.crt') }, Buffer.from('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
      assert.equal(response?.status, 200)
      const exported = /^apubi_tls_certificate_expiry_timestamp_seconds (\d+)$/m.exec(response!.body.toString())?.[1]
      assert.equal(Number(exported), Date.parse(new X509Certificate(pki.pem('server.crt')).validTo) / 1000)
    })

    it('publishes a file through the CLI (ApubiClient over fetch) trusting the CA with NODE_EXTRA_CA_CERTS', async () => {
      const bytes = randomBytes(300_000)
      writeFileSync(join(server.fileRoot, 'movie.ts'), bytes)
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--import', 'tsx', cli, 'load', `file://${server.fileRoot}/movie.ts`, 'tls/movie.ts', '--wait', '--interval', '50', '--url', server.url],
          { env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.file('server-ca.crt') } },
          (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve({ stdout })),
        ),
      )
      assert.match(stdout, /^SUCCESS tls\/movie\.ts$/m)
      assert.deepEqual(readFileSync(join(server.dataDir, 'cdn/tls/movie.ts')), bytes)
    })

    it('closes a connection that never starts the TLS handshake once APUBI_HEADERS_TIMEOUT_MS has passed', async () => {
      const silent = await exchange({ port: server.port, request: Buffer.alloc(0), untilClosed: true, timeoutMs: 30_000 })
      assert.ok(silent.closedByServer)
      assert.deepEqual(silent.responses, [])
    })

    it('closes a TLS connection whose headers are trickled (slowloris) with 408, as over plain HTTP', async () => {
      const slow = await exchange({
        port: server.port,
        tls: { ca: pki.pem('server-ca.crt') },
        request: Buffer.from('POST /apubi HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
        pace: { bytes: 8, everyMs: 100, repeat: 'X-Slow: 1\r\n' },
        untilClosed: true,
        timeoutMs: 30_000,
      })
      assert.ok(slow.closedByServer)
      assert.equal(slow.responses[0]?.status, 408)
    })

    it('gives no HTTP answer to plain HTTP on the TLS port', async () => {
      const plain = await exchange({ port: server.port, request: GET_WSDL, untilClosed: true, timeoutMs: 30_000 })
      assert.deepEqual(plain.responses, [], 'no HTTP answer to plain HTTP')
      assert.ok(plain.closedByServer)
    })
  })

  describe('with authentication on', () => {
    it('accepts a PasswordText UsernameToken over TLS (refused over plain HTTP, test/soap/auth.test.ts)', async () => {
      const server = await startTlsServer({ APUBI_TLS_CERT: pki.file('server.crt'), APUBI_TLS_KEY: pki.file('server.key'), APUBI_SOAP_USER: 'wfm', APUBI_SOAP_PASSWORD: 'over-tls' })
      try {
        writeFileSync(join(server.fileRoot, 'text.ts'), 'asset')
        const run = (password: string) =>
          new Promise<{ code: number; stdout: string }>((resolve) =>
            execFile(
              process.execPath,
              ['--import', 'tsx', cli, 'load', `file://${server.fileRoot}/text.ts`, 'tls/text.ts', '--wait', '--interval', '50', '--url', server.url, '--auth', 'text'],
              { env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.file('server-ca.crt'), APUBI_SOAP_USER: 'wfm', APUBI_SOAP_PASSWORD: password } },
              (error, stdout) => resolve({ code: error ? (error.code as number) : 0, stdout }),
            ),
          )
        const accepted = await run('over-tls')
        assert.equal(accepted.code, 0)
        assert.match(accepted.stdout, /^SUCCESS tls\/text\.ts$/m)
        assert.equal((await run('guess')).code, 2, 'a wrong PasswordText is a fault')
      } finally {
        await server.stop()
      }
    })
  })

  describe('with APUBI_TLS_CLIENT_CA (mTLS)', () => {
    let server: TlsServer
    before(async () => {
      server = await startTlsServer({ APUBI_TLS_CERT: pki.file('server.crt'), APUBI_TLS_KEY: pki.file('server.key'), APUBI_TLS_CLIENT_CA: pki.file('client-ca.crt') })
    })
    after(() => server.stop())

    const trusting = () => ({ ca: pki.pem('server-ca.crt') })

    it('refuses a client without a certificate at the handshake: no HTTP answer, the refusal logged', async () => {
      const answer = await exchange({ port: server.port, tls: trusting(), request: GET_WSDL, untilClosed: true, timeoutMs: 30_000 })
      assert.deepEqual(answer.responses, [])
      await eventually(() => /"msg":"TLS handshake refused"/.test(server.output()) || undefined)
    })

    it('refuses a client certificate signed by another CA', async () => {
      const answer = await exchange({ port: server.port, tls: { ...trusting(), cert: pki.pem('rogue.crt'), key: pki.pem('rogue.key') }, request: GET_WSDL, untilClosed: true, timeoutMs: 30_000 })
      assert.deepEqual(answer.responses, [])
    })

    it('accepts a client certificate signed by the client CA, and answers SOAP', async () => {
      const tls = { ...trusting(), cert: pki.pem('wfm.crt'), key: pki.pem('wfm.key') }
      assert.equal((await ask(server.port, tls, GET_WSDL))?.status, 200)
      const fault = await ask(server.port, tls, post(envelope('GetTaskStatus', '<TaskId>over-mtls</TaskId>')))
      assert.equal(fault?.status, 500)
      assert.match(fault!.body.toString(), /<message>Task Id does not exist: over-mtls<\/message>/)
    })
  })

  describe('SIGHUP', () => {
    let server: TlsServer
    let origin: Server
    let release: () => void
    let requested: Promise<void>
    const live = { cert: '', key: '' }
    const bytes = randomBytes(2 * 1024 * 1024)

    before(async () => {
      // The certificate the server reads: a copy that the tests replace, as a renewal does.
      const files = mkdtempSync(join(tmpdir(), 'apubi-live-cert-'))
      live.cert = join(files, 'tls.crt')
      live.key = join(files, 'tls.key')
      copyFileSync(pki.file('server.crt'), live.cert)
      copyFileSync(pki.file('server.key'), live.key)
      server = await startTlsServer({ APUBI_TLS_CERT: live.cert, APUBI_TLS_KEY: live.key })
      // An origin that sends half the file, then holds the transfer until the test releases it.
      let markRequested!: () => void
      requested = new Promise((resolve) => (markRequested = resolve))
      const released = new Promise<void>((resolve) => (release = resolve))
      origin = createServer((req, res) => {
        res.writeHead(200, { 'Content-Length': bytes.length, 'Content-Type': 'video/mp2t' })
        if (req.method === 'HEAD') {
          res.end()
          return
        }
        res.write(bytes.subarray(0, bytes.length / 2))
        markRequested()
        void released.then(() => res.end(bytes.subarray(bytes.length / 2)))
      })
      await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
    })
    after(async () => {
      release()
      await server.stop()
      await new Promise((resolve) => origin.close(resolve))
    })

    it('serves a renewed certificate to new connections, keeps open connections and a running task, and keeps the old one when the new files are bad', async () => {
      const trusting = { ca: pki.pem('server-ca.crt') }
      const source = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/movie.ts`
      const accepted = await ask(server.port, trusting, post(envelope('LoadAsset', `<SourceAssetUrl>${source}</SourceAssetUrl><DestinationAsset>reload/movie.ts</DestinationAsset>`)))
      const taskId = valueOf(accepted, 'TaskId') ?? assert.fail(`no TaskId: ${accepted?.body}`)
      await requested
      const held = await openConnection(server.port, trusting)
      assert.equal((await held.ask(GET_WSDL)).status, 200)
      assert.equal(held.socket.getPeerCertificate().fingerprint256, pki.fingerprint('server'))

      copyFileSync(pki.file('renewed.crt'), live.cert)
      copyFileSync(pki.file('renewed.key'), live.key)
      server.process.kill('SIGHUP')
      await eventually(() => server.output().includes('"msg":"TLS certificate reloaded"') || undefined)
      assert.match(server.output(), new RegExp(`"fingerprint256":"${pki.fingerprint('renewed')}".*"msg":"TLS certificate reloaded"`))
      assert.equal(await servedFingerprint(server.port), pki.fingerprint('renewed'))
      assert.equal((await ask(server.port, trusting, GET_WSDL))?.status, 200, 'the renewed certificate verifies')
      // The connection opened before the reload carries on, with the certificate it was shown.
      assert.equal((await held.ask(GET_WSDL)).status, 200)
      held.socket.destroy()

      // A key that does not match the certificate: logged, and the renewed certificate stays.
      copyFileSync(pki.file('server.key'), live.key)
      server.process.kill('SIGHUP')
      await eventually(() => (server.output().match(/TLS certificate reload failed/g)?.length === 1 ? true : undefined))
      assert.match(server.output(), /"reason":"The TLS certificate, key or client CA cannot be used: [^"]*"[^\n]*"msg":"TLS certificate reload failed; the previous certificate stays"/)
      assert.equal(await servedFingerprint(server.port), pki.fingerprint('renewed'))
      // An unreadable key file: the same.
      unlinkSync(live.key)
      server.process.kill('SIGHUP')
      await eventually(() => (server.output().match(/TLS certificate reload failed/g)?.length === 2 ? true : undefined))
      assert.match(server.output(), /"reason":"Cannot read APUBI_TLS_KEY [^"]*: ENOENT"/)
      assert.equal(await servedFingerprint(server.port), pki.fingerprint('renewed'))

      // All the while the task was running; released, it finishes.
      const status = () => ask(server.port, trusting, post(envelope('GetTaskStatus', `<TaskId>${taskId}</TaskId>`)))
      assert.equal(valueOf(await status(), 'Status'), 'IN_PROGRESS')
      release()
      await eventually(async () => (valueOf(await status(), 'Status') === 'IN_PROGRESS' ? undefined : true), 60_000, 50)
      assert.equal(valueOf(await status(), 'Status'), 'SUCCESS')
      assert.deepEqual(readFileSync(join(server.dataDir, 'cdn/reload/movie.ts')), bytes)
    })
  })
})
