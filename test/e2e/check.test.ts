// `apubi check` as an operator runs it: against our own server (plain HTTP; HTTPS with mTLS and
// authentication; on PostgreSQL) where every check passes, and against servers that do not conform,
// where it fails and names the check that caught them.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { CHECKS } from '../../src/conformance/index.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { listFiles } from './helpers.js'
import { startRewritingProxy, startSoapPackageServer, type RunningServer } from '../servers/non-conforming.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'
import { makeTestCertificates, type TestCertificates } from '../servers/tls.js'

const entry = new URL('../../src/cli/index.ts', import.meta.url).pathname
const ALL_CHECKS = Object.keys(CHECKS).sort()

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** Outcome by check id, from --json. */
  readonly outcomes: Map<string, string>
  readonly evidence: Map<string, string>
}

async function check(url: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', entry, 'check', url, '--json', '--interval', '50', ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    )
  })
  const parsed = result.stdout ? (JSON.parse(result.stdout) as { checks: Array<{ id: string; outcome: string; evidence: string }> }) : { checks: [] }
  return { ...result, outcomes: new Map(parsed.checks.map((c) => [c.id, c.outcome])), evidence: new Map(parsed.checks.map((c) => [c.id, c.evidence])) }
}

const failed = (run: Run) => [...run.outcomes].filter(([, o]) => o === 'fail').map(([id]) => id).sort()

/** An HLS package on an HTTP origin, as packagers leave it: master playlist → media playlist → segments. */
let origin: HttpOrigin
const originRoot = mkdtempSync(join(tmpdir(), 'apubi-check-origin-'))
before(async () => {
  const put = (path: string, text: string) => {
    mkdirSync(dirname(join(originRoot, path)), { recursive: true })
    writeFileSync(join(originRoot, path), text)
  }
  put('hls/master.m3u8', '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e"\nvideo/prog.m3u8\n')
  put('hls/video/prog.m3u8', '#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nseg0.ts\n#EXTINF:4.0,\nseg1.ts\n#EXT-X-ENDLIST\n')
  put('hls/video/seg0.ts', 'segment 0')
  put('hls/video/seg1.ts', 'segment 1')
  origin = await startHttpOrigin(originRoot)
})
after(async () => {
  await origin.close()
  rmSync(originRoot, { recursive: true, force: true })
})

/** A test file and a directory under the server's file root, and the origin's HLS package, as --source, --directory and --hls. */
function lifecycleArgs(server: TestServer, name: string): string[] {
  const root = join(server.fileRoot, name)
  mkdirSync(join(root, 'directory'), { recursive: true })
  writeFileSync(join(root, 'clip.ts'), 'clip bytes')
  writeFileSync(join(root, 'directory', 'a.ts'), 'a')
  writeFileSync(join(root, 'directory', 'b.ts'), 'b')
  return [
    ...['--source', pathToFileURL(join(root, 'clip.ts')).href, '--destination', `${name}/clip.ts`],
    ...['--directory', `${pathToFileURL(join(root, 'directory')).href}/`, '--directory-destination', `${name}/directory/`],
    ...['--hls', origin.url('hls/master.m3u8'), '--hls-destination', `${name}/hls/`],
  ]
}

function assertAllPassed(run: Run): void {
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`)
  assert.deepEqual([...run.outcomes.keys()].sort(), ALL_CHECKS)
  assert.deepEqual([...run.outcomes].filter(([, o]) => o !== 'pass'), [])
}

describe('apubi check passes against our server', () => {
  describe('over plain HTTP, on SQLite', () => {
    let server: TestServer
    before(async () => (server = await startServer()))
    after(() => server.stop())

    it('runs every check, lifecycle included, all pass; JUnit XML says the same; what it published is purged', async () => {
      const junit = join(server.fileRoot, 'report.xml')
      const run = await check(server.url, [...lifecycleArgs(server, 'plain'), '--junit', junit])
      assertAllPassed(run)
      assert.equal(run.outcomes.get('load.resubmitted'), 'pass', 'the same LoadAsset while in progress gets the same TaskId')
      assert.match(run.evidence.get('load.destination')!, /^DestinationAsset plain\/clip\.ts$/)
      assert.match(run.evidence.get('hls.destination')!, /^DestinationAsset plain\/hls\/$/)
      assert.ok(origin.requests('hls/video/seg1.ts') > 0, 'the package was published whole, segments too')
      const xml = readFileSync(junit, 'utf8')
      assert.match(xml, new RegExp(`<testsuites name="apubi check" tests="${ALL_CHECKS.length}" failures="0" skipped="0"`))
      assert.equal(xml.match(/<testcase /g)?.length, ALL_CHECKS.length)
      for (const published of ['plain/clip.ts', 'plain/directory', 'plain/hls']) assert.equal(existsSync(join(server.dataDir, 'cdn', published)), false, published)
    })

    it('read-only by default: prints a table, publishes nothing', async () => {
      const cdn = join(server.dataDir, 'cdn')
      const published = async () => (existsSync(cdn) ? listFiles(cdn) : [])
      const before = await published()
      const run = await new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(process.execPath, ['--import', 'tsx', entry, 'check', server.url], (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout })),
      )
      assert.equal(run.code, 0, run.stdout)
      assert.match(run.stdout, /^RESULT +CHECK +FROM +EVIDENCE\n/)
      assert.match(run.stdout, /\nPASS +unknown-task\.exceptionws +vendor +ExceptionWS in namespace "wfm:APUBI\/v1\/schemas"/)
      assert.doesNotMatch(run.stdout, /load\./)
      assert.match(run.stdout, /\n17 passed, 0 failed, 0 warnings, 0 skipped$/m)
      assert.deepEqual(await published(), before)
    })

    it('a mistake on the command line exits 2 and sends nothing', async () => {
      const run = await check(server.url, ['--destination', 'x.ts'])
      assert.equal(run.code, 2)
      assert.match(run.stderr, /--destination needs --source/)
    })
  })

  describe('over HTTPS with a client certificate (mTLS) and authentication', () => {
    const password = 'Check-Secret-8d2f'
    let certs: TestCertificates
    let server: TestServer
    before(async () => {
      certs = makeTestCertificates()
      server = await startServer({
        env: { APUBI_TLS_CERT: certs.files.cert, APUBI_TLS_KEY: certs.files.key, APUBI_TLS_CLIENT_CA: certs.files.ca, APUBI_SOAP_USER: 'wfm', APUBI_SOAP_PASSWORD: password },
      })
    })
    after(async () => {
      await server.stop()
      certs.remove()
    })
    // The test CA signed the server's certificate; it serves as the client's too.
    const tls = () => ['--ca', certs.files.ca, '--cert', certs.files.cert, '--key', certs.files.key]

    it('with a WS-Security UsernameToken (digest): every check passes, the password shows nowhere', async () => {
      const run = await check(server.url, [...tls(), ...lifecycleArgs(server, 'secure'), '--user', 'wfm', '--auth', 'digest'], { APUBI_SOAP_PASSWORD: password })
      assertAllPassed(run)
      assert.equal(`${run.stdout}${run.stderr}`.includes(password), false)
    })

    it('with HTTP Basic taken from the URL: the read-only checks pass', async () => {
      const run = await check(server.url.replace('https://', `https://wfm:${password}@`), tls())
      assert.equal(run.code, 0, run.stdout)
      assert.equal(failed(run).length, 0)
      assert.equal(`${run.stdout}${run.stderr}`.includes(password), false)
    })

    it('without the CA, the server is not trusted: the checks fail and say why', async () => {
      const run = await check(server.url, ['--user', 'wfm', '--password', password])
      assert.equal(run.code, 1)
      assert.match(run.evidence.get('wsdl.served')!, /^no answer: .*certificate/)
    })

    it('with a wrong password, the refusals are no answer about the task: those checks fail, the variants are not tried', async () => {
      const run = await check(server.url, [...tls(), '--user', 'wfm', '--password', 'wrong'])
      assert.equal(run.code, 1)
      assert.deepEqual(failed(run), ['unknown-task.exceptionws', 'unknown-task.fault', 'unknown-task.http-status', 'unknown-task.wording'])
      assert.match(run.evidence.get('unknown-task.fault')!, /^HTTP 401, fault soapenv:Client .*: our credentials were refused$/)
      assert.equal(run.outcomes.get('envelope.no-namespace'), 'skip')
    })
  })

  describe('on PostgreSQL', () => {
    let postgres: PostgresServer
    let server: TestServer
    before(async () => {
      postgres = await startPostgres()
      server = await startServer({ env: { APUBI_DATABASE_URL: await postgres.createDatabase('check') } })
    })
    after(async () => {
      await server?.stop()
      await postgres?.stop()
    })

    it('every check passes, lifecycle included', async () => {
      assertAllPassed(await check(server.url, lifecycleArgs(server, 'pg')))
    })
  })
})

describe('apubi check fails against servers that do not conform, naming the check', () => {
  let server: TestServer
  const proxies: RunningServer[] = []
  const scratch = mkdtempSync(join(tmpdir(), 'apubi-check-'))
  before(async () => (server = await startServer()))
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()))
    await server.stop()
    rmSync(scratch, { recursive: true, force: true })
  })
  const proxy = async (rewrite: Parameters<typeof startRewritingProxy>[1]) => {
    const running = await startRewritingProxy(server.url, rewrite)
    proxies.push(running)
    return running.url
  }

  it('faults sent with HTTP 200', async () => {
    const url = await proxy(({ status, body }) => ({ status: status === 500 ? 200 : status, body }))
    const run = await check(url, [])
    assert.equal(run.code, 1)
    assert.deepEqual(failed(run), ['request.empty', 'request.missing-taskid', 'request.not-xml', 'unknown-task.http-status'])
    assert.match(run.evidence.get('unknown-task.http-status')!, /^HTTP 200, fault soapenv:Server "Task Id does not exist"/)
  })

  it('faults without the ExceptionWS detail', async () => {
    const url = await proxy(({ status, body }) => ({ status, body: body.replace(/<detail>[\s\S]*<\/detail>/, '') }))
    const run = await check(url, [])
    assert.equal(run.code, 1)
    assert.deepEqual(failed(run), ['unknown-task.exceptionws'])
    assert.match(run.evidence.get('unknown-task.exceptionws')!, /the fault has no detail$/)
  })

  it('a task that never leaves IN_PROGRESS', async () => {
    writeFileSync(join(server.fileRoot, 'stuck.ts'), 'stuck')
    const url = await proxy(({ status, body }) => ({ status, body: body.replace('>SUCCESS<', '>IN_PROGRESS<') }))
    const run = await check(url, ['--source', pathToFileURL(join(server.fileRoot, 'stuck.ts')).href, '--destination', 'stuck.ts', '--timeout', '2'])
    assert.equal(run.code, 1)
    assert.deepEqual(failed(run), ['load.success'])
    assert.match(run.evidence.get('load.success')!, /^still IN_PROGRESS after [\d.]+ s \(\d+ polls\)$/)
    assert.equal(run.outcomes.get('load.destination'), 'skip')
    assert.equal(run.outcomes.get('purge.success'), 'skip')
  })

  it('a server built on the npm soap package from our WSDL: faults with HTTP 200, ExceptionWS unqualified, SOAPAction routing', async () => {
    const vendor = await startSoapPackageServer()
    proxies.push(vendor)
    const run = await check(vendor.url, ['--source', 'ftp://user:pw@cis.invalid/movie.ts', '--destination', 'movie.ts'])
    assert.equal(run.code, 1)
    assert.deepEqual(failed(run), ['envelope.soapaction-operation', 'envelope.soapaction-unquoted', 'unknown-task.exceptionws', 'unknown-task.http-status'])
    assert.match(run.evidence.get('unknown-task.exceptionws')!, /^ExceptionWS in namespace "", message "Task Id does not exist"$/)
    assert.equal(run.outcomes.get('load.success'), 'pass')
    assert.equal(run.outcomes.get('load.resubmitted'), 'warn', 'it makes a second task where we return the first')
  })
})
