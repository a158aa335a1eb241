// What a running server answers and logs when it refuses a request: faults name what the client sent
// (never a server path, never 60 KB of it), the log line gives the reason, the detail and the client
// address, and a person opening the endpoint in a browser is told where to go.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient, ApubiFault } from '../../src/client/index.js'
import { eventually } from '../e2e/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'

const envelope = (body: string) => `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>${body}</soap:Body></soap:Envelope>`

describe('refused requests', () => {
  let server: TestServer
  let outside: string
  let client: ApubiClient
  let source: string

  const post = async (body: string) => {
    const response = await fetch(server.url, { method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8' }, body: envelope(body) })
    return { status: response.status, text: await response.text() }
  }
  const fault = async (call: () => Promise<unknown>): Promise<ApubiFault> => {
    const e = await call().then(() => undefined, (e: unknown) => e)
    assert.ok(e instanceof ApubiFault, `expected a fault, got ${String(e)}`)
    return e
  }
  /** The JSON log lines written since `mark` characters of output. */
  const logSince = (mark: number) =>
    server
      .output()
      .slice(mark)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)

  before(async () => {
    server = await startServer()
    client = new ApubiClient(server.url)
    // A folder of the CDN that leads outside the file roots: publishing into it is refused.
    outside = mkdtempSync(join(tmpdir(), 'apubi-outside-'))
    symlinkSync(outside, join(server.dataDir, 'cdn', 'evil'))
    source = join(server.fileRoot, 'a.ts')
    writeFileSync(source, 'asset')
  })
  after(async () => {
    await server?.stop()
    rmSync(outside, { recursive: true, force: true })
  })

  it('names the relative destination the client sent, never the CDN path it resolved to; the log keeps that', async () => {
    for (const call of [() => client.loadAsset(pathToFileURL(source).href, 'evil/x.ts'), () => client.purgeAsset('evil/x.ts')]) {
      const mark = server.output().length
      const refused = await fault(call)
      assert.equal(refused.faultcode, 'soapenv:Client')
      assert.equal(refused.faultstring, 'Location not allowed')
      assert.match(refused.detail, /^Destination "evil\/x\.ts": location not allowed under the CDN base/)
      assert.ok(!refused.detail.includes(server.dataDir) && !refused.detail.includes('file:'), refused.detail)
      // The line is written before the answer, but the server's stdout reaches us on its own pipe.
      const line = await eventually(() => logSince(mark).find((l) => l['outcome'] === 'ERR_POLICY_DENIED'), 10_000)
      assert.equal(line['client'], '127.0.0.1')
      assert.match(String(line['reason']), /evil\/x\.ts/)
      assert.ok(String(line['detail']).includes(`${join(server.dataDir, 'cdn', 'evil', 'x.ts')} is outside the allowed file roots`), String(line['detail']))
    }
  })

  for (const [destination, says] of [
    ['/etc/x', /starts with '\/'/],
    ['a\\..\\..\\x', /holds a backslash/],
    ['a/%2e%2e/x', /holds a percent-escape/],
    ['a\tb.ts', /holds a control character/],
  ] as const) {
    it(`answers a Client fault for the relative destination ${JSON.stringify(destination)}`, async () => {
      const refused = await fault(() => client.loadAsset(pathToFileURL(source).href, destination))
      assert.equal(refused.faultcode, 'soapenv:Client')
      assert.equal(refused.faultstring, 'Invalid request')
      assert.match(refused.detail, says)
    })
  }

  it('echoes at most 256 characters of a 60,000-character TaskId, in the fault and in the log line', async () => {
    const mark = server.output().length
    const taskId = `${'t'.repeat(59_990)}-end-marker`
    const answer = await post(`<GetTaskStatus xmlns="wfm:APUBI/v1/schemas"><TaskId>${taskId}</TaskId></GetTaskStatus>`)
    assert.equal(answer.status, 500)
    assert.ok(answer.text.length < 2_000, `a fault of ${answer.text.length} characters`)
    assert.match(answer.text, /Task Id does not exist: t{256}… \(cut, 60001 characters in all\)/)
    const found = () => server.output().slice(mark).split('\n').filter((l) => l.includes('ERR_TASK_NOT_FOUND'))
    const lines = await eventually(() => (found().length > 0 ? found() : undefined), 10_000)
    assert.equal(lines.length, 1)
    assert.ok(lines[0]!.length < 2_000, `a log line of ${lines[0]!.length} characters`)
    assert.ok(!lines[0]!.includes('end-marker'))
    const line = JSON.parse(lines[0]!) as Record<string, unknown>
    assert.equal(line['client'], '127.0.0.1')
    assert.match(String(line['reason']), /^Task Id does not exist: t+… \(cut/)
  })

  it('logs a malformed request with its reason and the client address, not just a code', async () => {
    const mark = server.output().length
    assert.equal((await post('<LoadAsset xmlns="wfm:APUBI/v1/schemas"><SourceAssetUrl>x</SourceAssetUrl></LoadAsset>')).status, 500)
    const line = await eventually(() => logSince(mark).find((l) => l['outcome'] === 'ERR_REQUEST_INVALID'), 10_000)
    assert.equal(line['client'], '127.0.0.1')
    assert.equal(line['reason'], 'LoadAsset needs a non-empty DestinationAsset')
  })

  it('answers GET and HEAD without ?wsdl with a short page pointing at ?wsdl and the dashboard', async () => {
    const page = await fetch(server.url)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    const html = await page.text()
    assert.match(html, /href="\/apubi\?wsdl"/)
    assert.match(html, /href="\/admin\/"/)
    const head = await fetch(server.url, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
    assert.equal((await fetch(`${server.url}?wsdl`)).status, 200)
    assert.equal((await fetch(`${server.url}?xsd=nothing.xsd`)).status, 404)
    // Any other method is still a SOAP fault.
    const put = await fetch(server.url, { method: 'PUT', body: 'x' })
    assert.equal(put.status, 500)
    assert.match(await put.text(), /HTTP method PUT is not allowed; use POST/)
  })
})

