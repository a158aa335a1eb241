import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { ApubiClient, ApubiFault, usernameToken, type ClientCredentials } from '../../src/client/index.js'
import { eventually } from '../e2e/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'

const USER = 'wfm'
const PASSWORD = 'pa55:word with spaces'
const cli = new URL('../../src/cli/index.ts', import.meta.url).pathname

const envelope = (header: string, body: string) =>
  `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">${header && `<soap:Header>${header}</soap:Header>`}<soap:Body>${body}</soap:Body></soap:Envelope>`
const getTaskStatus = (taskId: string) => `<GetTaskStatus xmlns="wfm:APUBI/v1/schemas"><TaskId>${taskId}</TaskId></GetTaskStatus>`

describe('authentication against a running server (APUBI_SOAP_USER and APUBI_SOAP_PASSWORD set)', () => {
  let server: TestServer
  let taskId: string

  const post = async (body: string, headers: Record<string, string> = {}) => {
    const response = await fetch(server.url, { method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8', ...headers }, body })
    return { status: response.status, challenge: response.headers.get('www-authenticate'), text: await response.text() }
  }
  const assertRefused = (answer: { status: number; challenge: string | null; text: string }) => {
    assert.equal(answer.status, 401)
    assert.equal(answer.challenge, 'Basic realm="apubi", charset="UTF-8"')
    assert.match(answer.text, /<faultcode>soapenv:Client<\/faultcode><faultstring>Authentication failed<\/faultstring>/)
    assert.match(answer.text, /<message>Authentication failed<\/message>/)
  }
  const client = (credentials?: ClientCredentials) => new ApubiClient(server.url, credentials)

  before(async () => {
    server = await startServer({ env: { APUBI_SOAP_USER: USER, APUBI_SOAP_PASSWORD: PASSWORD } })
    const source = join(server.fileRoot, 'a.ts')
    writeFileSync(source, 'asset')
    taskId = await client({ user: USER, password: PASSWORD, scheme: 'basic' }).loadAsset(pathToFileURL(source).href, 'Auth/a.ts')
  })
  after(() => server?.stop())

  for (const scheme of ['basic', 'digest'] as const) {
    it(`accepts ${scheme === 'basic' ? 'HTTP Basic' : 'a PasswordDigest UsernameToken'} with the right user and password`, async () => {
      const answer = await client({ user: USER, password: PASSWORD, scheme }).waitFor(taskId, 50)
      assert.deepEqual(answer, { status: 'SUCCESS', destinationAsset: 'Auth/a.ts' })
    })
  }

  it('refuses a request without credentials with a 401 challenge and a Client fault', async () => {
    assertRefused(await post(envelope('', getTaskStatus(taskId))))
  })

  const wrong: Array<[string, ClientCredentials]> = [
    ['a wrong Basic password', { user: USER, password: 'guess', scheme: 'basic' }],
    ['a wrong Basic user', { user: 'root', password: PASSWORD, scheme: 'basic' }],
    ['a wrong digest password', { user: USER, password: 'guess', scheme: 'digest' }],
    ['a right PasswordText over plain HTTP', { user: USER, password: PASSWORD, scheme: 'text' }],
  ]
  for (const [name, credentials] of wrong) {
    it(`refuses ${name}`, async () => {
      const refused = await client(credentials).getTaskStatus(taskId).catch((e: unknown) => e)
      assert.ok(refused instanceof ApubiFault, `accepted: ${JSON.stringify(refused)}`)
      assert.equal(refused.httpStatus, 401)
      assert.equal(refused.faultstring, 'Authentication failed')
      assert.equal(refused.detail, 'Authentication failed')
    })
  }

  it('refuses a replayed UsernameToken, and a stale one', async () => {
    const credentials: ClientCredentials = { user: USER, password: PASSWORD, scheme: 'digest' }
    const body = envelope(usernameToken(credentials), getTaskStatus(taskId))
    assert.equal((await post(body)).status, 200)
    assertRefused(await post(body))
    const stale = new Date(Date.now() - 3_600_000).toISOString()
    assertRefused(await post(envelope(usernameToken(credentials, undefined, stale), getTaskStatus(taskId))))
  })

  it('logs why a request was refused, never the password', async () => {
    await post(envelope('', getTaskStatus(taskId)), { Authorization: `Basic ${Buffer.from(`${USER}:not-${PASSWORD}`).toString('base64')}` })
    const lines = server.output().split('\n').filter((l) => l.includes('soap request refused'))
    assert.ok(lines.some((l) => l.includes('"reason":"wrong user or password (Basic)"')), lines.join('\n'))
    assert.ok(lines.some((l) => l.includes('"reason":"nonce replayed"')), lines.join('\n'))
    assert.ok(!server.output().includes(PASSWORD), 'the password reached the log')
  })

  it('the CLI takes the user and password from the environment, and sends a digest with --auth digest', async () => {
    const run = promisify(execFile)
    const env = { ...process.env, APUBI_SOAP_USER: USER, APUBI_SOAP_PASSWORD: PASSWORD }
    const { stdout } = await run(process.execPath, ['--import', 'tsx', cli, 'status', taskId, '--url', server.url, '--auth', 'digest'], { env })
    assert.equal(stdout, 'SUCCESS Auth/a.ts\n')
    const refused = await run(process.execPath, ['--import', 'tsx', cli, 'status', taskId, '--url', server.url], {
      env: { ...process.env, APUBI_SOAP_USER: USER, APUBI_SOAP_PASSWORD: 'guess' },
    }).catch((e: { code: number; stderr: string }) => e)
    assert.equal((refused as { code: number }).code, 2)
    assert.match((refused as { stderr: string }).stderr, /fault \(HTTP 401\): soapenv:Client: Authentication failed\n/)
  })

  it('serves the WSDL without credentials: it holds no secret', async () => {
    const response = await fetch(`${server.url}?wsdl`)
    assert.equal(response.status, 200)
    assert.match(await response.text(), /<wsdl:definitions/)
  })
})

describe('client allowlist (APUBI_ALLOWED_CLIENTS)', () => {
  it('refuses a caller outside it with the same fault, and serves one inside it', async () => {
    const outside = await startServer({ env: { APUBI_ALLOWED_CLIENTS: '10.0.0.0/8, fd00::/8' } })
    const inside = await startServer({ env: { APUBI_ALLOWED_CLIENTS: '10.0.0.0/8,127.0.0.1' } })
    try {
      const refused = await new ApubiClient(outside.url).getTaskStatus('t1').catch((e: unknown) => e)
      assert.ok(refused instanceof ApubiFault)
      assert.equal(refused.httpStatus, 401)
      assert.equal(refused.detail, 'Authentication failed')
      // The line is written before the answer, but the server's stdout reaches us on its own pipe.
      await eventually(() => (/"reason":"client address 127\.0\.0\.1 not allowed"/.test(outside.output()) ? true : undefined), 10_000)
      await assert.rejects(new ApubiClient(inside.url).getTaskStatus('t1'), /Task Id does not exist/)
    } finally {
      await outside.stop()
      await inside.stop()
    }
  })
})
