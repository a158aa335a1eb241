// The location policy through a running server: a denied location is a Client fault when the request
// arrives; an HTTP source that redirects to a denied host fails its task when the redirect comes, and
// that host is never asked; allowed sources still publish. Three loopback addresses play three hosts:
// 127.0.0.3 allowed, 127.0.0.1 and 127.0.0.2 denied.
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ApubiClient, ApubiFault } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { eventually, listFiles } from './helpers.js'

const CONTENT = 'a segment of a movie'

describe('location policy, end to end', () => {
  let root: string
  let allowed: HttpOrigin
  let denied: HttpOrigin
  let server: TestServer
  let client: ApubiClient

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'apubi-policy-e2e-'))
    writeFileSync(join(root, 'a.ts'), CONTENT)
    allowed = await startHttpOrigin(root, { host: '127.0.0.3' })
    denied = await startHttpOrigin(root, { host: '127.0.0.2' })
    server = await startServer({ env: { APUBI_DENIED_HOSTS: '127.0.0.1/32, 127.0.0.2', APUBI_MAX_ATTEMPTS: '3' } })
    client = new ApubiClient(server.url)
  })
  after(async () => {
    await server.stop()
    await allowed.close()
    await denied.close()
    rmSync(root, { recursive: true, force: true })
  })

  /** The fault a request gets; fails if it gets a TaskId instead. */
  async function faultOf(request: Promise<string>): Promise<ApubiFault> {
    try {
      assert.fail(`a task was created: ${await request}`)
    } catch (e) {
      assert.ok(e instanceof ApubiFault, String(e))
      return e
    }
  }
  const linesOf = (taskId: string): string[] => server.output().split('\n').filter((l) => l.includes(taskId))

  it('a denied source is a Client fault at request time, naming the URL without its password and the rule', async () => {
    const fault = await faultOf(client.loadAsset(denied.url('a.ts', { user: 'editor', password: 'Pol1cy-Secret' }), 'Refused/a.ts'))
    assert.equal(fault.httpStatus, 500)
    assert.equal(fault.faultcode, 'soapenv:Client')
    assert.equal(fault.faultstring, 'Location not allowed')
    assert.equal(fault.detail, `http://editor:***@127.0.0.2:${denied.port}/a.ts is not allowed: denied by APUBI_DENIED_HOSTS entry 127.0.0.2`)
    assert.deepEqual(denied.log, [], 'nobody asked the denied host')
    assert.doesNotMatch(server.output(), /Pol1cy-Secret/)
  })

  it('a host name that resolves to a denied address is a Client fault at request time', async () => {
    const fault = await faultOf(client.loadAsset(`http://localhost:${allowed.port}/a.ts`, 'Refused/b.ts'))
    assert.equal(fault.faultcode, 'soapenv:Client')
    assert.equal(fault.detail, `http://localhost:${allowed.port}/a.ts is not allowed: localhost resolves to 127.0.0.1; denied by APUBI_DENIED_HOSTS entry 127.0.0.1/32`)
  })

  it('the metadata address in any spelling, as source or destination, is a Client fault', async () => {
    for (const source of ['http://169.254.169.254/latest/meta-data/', 'http://0xa9fea9fe/latest/', 'sftp://2852039166/etc/passwd']) {
      const fault = await faultOf(client.loadAsset(source, 'Refused/c.ts'))
      assert.equal(fault.faultcode, 'soapenv:Client', source)
      assert.match(fault.detail, /169\.254\.169\.254 is in 169\.254\.0\.0\/16 \(IPv4 link-local, where clouds serve instance metadata\)/, source)
    }
    const purge = await faultOf(client.purgeAsset('ftp://[::ffff:169.254.169.254]/vod/a.ts'))
    assert.equal(purge.faultcode, 'soapenv:Client')
    assert.equal(purge.faultstring, 'Location not allowed')
    const destination = await faultOf(client.loadAsset(allowed.url('a.ts'), `sftp://127.0.0.2/srv/a.ts`))
    assert.match(destination.detail, /^sftp:\/\/127\.0\.0\.2\/srv\/a\.ts is not allowed: denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.2$/)
  })

  it('an allowed HTTP source publishes', async () => {
    const taskId = await client.loadAsset(allowed.url('a.ts'), 'Allowed/a.ts')
    assert.deepEqual(await client.waitFor(taskId, 50), { status: 'SUCCESS', destinationAsset: 'Allowed/a.ts' })
    assert.equal(readFileSync(join(server.dataDir, 'cdn/Allowed/a.ts'), 'utf8'), CONTENT)
  })

  it('a redirect within the allowed host still publishes', async () => {
    const taskId = await client.loadAsset(allowed.url('redirect/a.ts'), 'Redirected/a.ts')
    assert.deepEqual(await client.waitFor(taskId, 50), { status: 'SUCCESS', destinationAsset: 'Redirected/a.ts' })
    assert.equal(readFileSync(join(server.dataDir, 'cdn/Redirected/a.ts'), 'utf8'), CONTENT)
  })

  it('a redirect to a denied host ends FAILED with ERR_POLICY_DENIED, not retried, nothing published, the host never asked', async () => {
    const source = allowed.url(`redirect-to/${denied.url('a.ts')}`)
    const taskId = await client.loadAsset(source, 'Bounced/a.ts')
    assert.deepEqual(await client.waitFor(taskId, 50), { status: 'FAILED' })
    const failed = await eventually(() => linesOf(taskId).find((l) => l.includes('"task failed"')))
    assert.match(failed, /"code":"ERR_POLICY_DENIED"/)
    assert.match(failed, new RegExp(`http://127\\.0\\.0\\.2:${denied.port}/a\\.ts is not allowed: denied by APUBI_DENIED_HOSTS entry 127\\.0\\.0\\.2`))
    assert.equal(linesOf(taskId).filter((l) => l.includes('"task will retry"')).length, 0, 'a refusal is not retried')
    assert.deepEqual(denied.log, [])
    assert.ok(!existsSync(join(server.dataDir, 'cdn/Bounced')) || (await listFiles(join(server.dataDir, 'cdn/Bounced'))).length === 0, 'nothing published, no partial file')
  })

  it('a redirect to a name that resolves to a denied address is refused when connecting', async () => {
    const source = allowed.url(`redirect-to/http://localhost:${allowed.port}/a.ts`)
    const taskId = await client.loadAsset(source, 'Rebound/a.ts')
    assert.deepEqual(await client.waitFor(taskId, 50), { status: 'FAILED' })
    const failed = await eventually(() => linesOf(taskId).find((l) => l.includes('"task failed"')))
    assert.match(failed, /"code":"ERR_POLICY_DENIED"/)
    assert.match(failed, /localhost resolves to 127\.0\.0\.1; denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.1\/32/)
    assert.ok(!existsSync(join(server.dataDir, 'cdn/Rebound/a.ts')))
  })
})
