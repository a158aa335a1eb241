import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { startServer, type TestServer } from '../servers/apubi-server.js'

const request = (name: string) => readFileSync(new URL(`./requests/${name}`, import.meta.url), 'utf8')
const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/'
const envelope = (body: string) => `<soap:Envelope xmlns:soap="${SOAP11}"><soap:Body>${body}</soap:Body></soap:Envelope>`
const successXml = (body: string) =>
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  `<soapenv:Envelope xmlns:soapenv="${SOAP11}" xmlns:ns="wfm:APUBI/v1/schemas"><soapenv:Header/><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>\n`

describe('the SOAP contract, against a running server', () => {
  let server: TestServer
  let source: string

  const post = async (body: string, headers: Record<string, string> = { 'Content-Type': 'text/xml; charset=utf-8' }, method = 'POST') => {
    const response = await fetch(server.url, { method, headers, body })
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() }
  }
  const taskIdOf = (text: string) => /<ns:TaskId>([^<]+)<\/ns:TaskId>/.exec(text)?.[1] ?? assert.fail(`no TaskId in ${text}`)
  const statusOf = (taskId: string) => post(request('vendor-GetTaskStatus.xml').replace('TestAssetA', taskId))
  const waitDone = async (taskId: string) => {
    for (;;) {
      const answer = await statusOf(taskId)
      if (!answer.text.includes('IN_PROGRESS')) return answer
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const faultOf = (text: string) => ({
    code: /<faultcode>([^<]*)</.exec(text)?.[1],
    string: /<faultstring>([^<]*)</.exec(text)?.[1],
    message: /<message>([^<]*)</.exec(text)?.[1],
  })

  before(async () => {
    server = await startServer()
    source = pathToFileURL(server.fileRoot).href + '/'
    writeFileSync(join(server.fileRoot, 'movie_01072015100045.ts'), randomBytes(3 * 1024 * 1024 + 7))
    mkdirSync(join(server.fileRoot, 'package/video/720p'), { recursive: true })
    writeFileSync(join(server.fileRoot, 'package/index.m3u8'), '#EXTM3U\n')
    for (let i = 0; i < 5; i++) writeFileSync(join(server.fileRoot, `package/video/720p/seg${i}.ts`), randomBytes(10_000 + i))
  })
  after(() => server.stop())

  it('answers the vendor GetTaskStatus sample for an unknown id with the documented fault, byte for byte', async () => {
    const answer = await post(request('vendor-GetTaskStatus.xml'))
    assert.equal(answer.status, 500)
    assert.equal(answer.type, 'text/xml; charset=utf-8')
    assert.equal(answer.text, request('vendor-GetTaskStatus.fault.xml'))
  })

  it('publishes the vendor LoadAsset sample, reports SUCCESS with the destination, bytes identical', async () => {
    const accepted = await post(request('vendor-LoadAsset-file.xml').replaceAll('@SOURCE@', source), { 'Content-Type': 'text/xml', SOAPAction: '' })
    assert.equal(accepted.status, 200)
    const taskId = taskIdOf(accepted.text)
    assert.equal(accepted.text, successXml(`<ns:LoadAssetResponse><ns:TaskId>${taskId}</ns:TaskId></ns:LoadAssetResponse>`))
    const done = await waitDone(taskId)
    assert.equal(
      done.text,
      successXml('<ns:GetTaskStatusResponse><ns:Status>SUCCESS</ns:Status><ns:DestinationAsset>Folder_01/TestAsset_1080p.mp4</ns:DestinationAsset></ns:GetTaskStatusResponse>'),
    )
    assert.deepEqual(readFileSync(join(server.dataDir, 'cdn/Folder_01/TestAsset_1080p.mp4')), readFileSync(join(server.fileRoot, 'movie_01072015100045.ts')))
  })

  it('publishes a directory (SourceAssetURL spelling, application/soap+xml) and purges it', async () => {
    const accepted = await post(request('vendor-LoadAsset-directory.xml').replaceAll('@SOURCE@', source), { 'Content-Type': 'application/soap+xml; charset=utf-8' })
    assert.equal(accepted.status, 200)
    const done = await waitDone(taskIdOf(accepted.text))
    assert.match(done.text, /<ns:Status>SUCCESS<\/ns:Status><ns:DestinationAsset>Folder_01\/<\/ns:DestinationAsset>/)
    for (let i = 0; i < 5; i++) {
      const rel = `video/720p/seg${i}.ts`
      assert.deepEqual(readFileSync(join(server.dataDir, 'cdn/Folder_01', rel)), readFileSync(join(server.fileRoot, 'package', rel)))
    }
    const purge = await post(request('vendor-PurgeAsset.xml'))
    assert.equal(purge.status, 200)
    assert.match((await waitDone(taskIdOf(purge.text))).text, /<ns:Status>SUCCESS<\/ns:Status>/)
    assert.equal(existsSync(join(server.dataDir, 'cdn/Folder_01')), false)
  })

  it('ends a task FAILED, not a fault, when the source is missing', async () => {
    const accepted = await post(envelope(`<LoadAsset xmlns="wfm:APUBI/v1/schemas"><SourceAssetUrl>${source}nope.ts</SourceAssetUrl><DestinationAsset>x.ts</DestinationAsset></LoadAsset>`))
    assert.equal(accepted.status, 200)
    const done = await waitDone(taskIdOf(accepted.text))
    assert.equal(done.text, successXml('<ns:GetTaskStatusResponse><ns:Status>FAILED</ns:Status></ns:GetTaskStatusResponse>'))
    assert.match(server.output(), /"code":"ERR_NOT_FOUND".*nope\.ts/)
  })

  it('purging something already absent is SUCCESS', async () => {
    const accepted = await post(envelope('<PurgeAsset xmlns="wfm:APUBI/v1/schemas"><DestinationAsset>never/was/here.ts</DestinationAsset></PurgeAsset>'))
    assert.match((await waitDone(taskIdOf(accepted.text))).text, /SUCCESS/)
  })

  const load = (src: string, dest = 'd.ts') => envelope(`<LoadAsset><SourceAssetUrl>${src}</SourceAssetUrl><DestinationAsset>${dest}</DestinationAsset></LoadAsset>`)
  const faults: Array<[string, () => Promise<{ status: number; text: string }>, string, RegExp]> = [
    ['a file:// source outside the roots', () => post(load('file:///etc/passwd')), 'soapenv:Client', /outside the allowed file roots/],
    ['a traversal out of the roots', () => post(load(`${source}../../../../etc/passwd`)), 'soapenv:Client', /outside the allowed file roots/],
    ['an absolute destination outside the roots', () => post(load(`${source}movie_01072015100045.ts`, 'file:///tmp/elsewhere.ts')), 'soapenv:Client', /outside the allowed file roots/],
    ['a relative destination climbing out of the CDN base', () => post(load(`${source}movie_01072015100045.ts`, 'a/../../x.ts')), 'soapenv:Client', /must not contain '\.\.'/],
    ['an unknown scheme', () => post(load('gopher://host/x')), 'soapenv:Client', /Unsupported URL scheme gopher/],
    ['a URL that does not parse', () => post(load('ftp://[bad')), 'soapenv:Client', /Not a valid URL/],
    ['malformed XML', () => post('<soap:Envelope'), 'soapenv:Client', /Malformed XML/],
    ['an unknown operation', () => post(envelope('<CancelTask xmlns="wfm:APUBI/v1/schemas"/>')), 'soapenv:Client', /Unknown operation/],
    ['a missing SourceAssetUrl', () => post(envelope('<LoadAsset><DestinationAsset>d</DestinationAsset></LoadAsset>')), 'soapenv:Client', /needs a non-empty SourceAssetUrl/],
    ['a PUT', () => post(envelope(''), { 'Content-Type': 'text/xml' }, 'PUT'), 'soapenv:Client', /method PUT is not allowed/],
    ['a JSON body', () => post('{}', { 'Content-Type': 'application/json' }), 'soapenv:Client', /Content-Type application\/json/],
    ['a body over the size cap', () => post(envelope(`<GetTaskStatus><TaskId>${'x'.repeat(2 << 20)}</TaskId></GetTaskStatus>`)), 'soapenv:Client', /larger than 1048576 bytes/],
    ['bytes that are not UTF-8', () => post(Buffer.from([0x3c, 0xff, 0xfe]) as unknown as string), 'soapenv:Client', /not valid UTF-8/],
  ]
  for (const [name, send, code, message] of faults) {
    it(`answers ${name} with a ${code} fault naming it, and keeps serving`, async () => {
      const answer = await send()
      assert.equal(answer.status, 500)
      const fault = faultOf(answer.text)
      assert.equal(fault.code, code)
      assert.match(fault.message ?? '', message)
      assert.equal((await statusOf('still-alive')).status, 500)
    })
  }

  it('serves the WSDL with the configured endpoint address', async () => {
    const wsdl = await (await fetch(`${server.url}?wsdl`)).text()
    assert.match(wsdl, new RegExp(`location="${server.url}"`))
  })
})
