// The service description (src/soap/wsdl/) against xmllint, against what the server renders, and
// against a WSDL-driven client (npm `soap`) talking to a real server over a socket.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { SaxesParser } from 'saxes'
import { createClientAsync } from 'soap'
import { PublishError } from '../../src/errors.js'
import { renderFault, toFault } from '../../src/soap/fault.js'
import { rememberStatusAnswers, renderResponse, type SoapResponse, type TaskStatus } from '../../src/soap/render.js'
import { loadServiceDescription } from '../../src/soap/wsdl.js'
import { APUBI_NS, SOAP_ENV_NS, escapeXml } from '../../src/soap/xml.js'
import { startServer } from '../servers/apubi-server.js'

const XSD_PATH = fileURLToPath(new URL('../../src/soap/wsdl/apubi.xsd', import.meta.url))
const WSDL_PATH = fileURLToPath(new URL('../../src/soap/wsdl/apubi.wsdl', import.meta.url))
const WSDL_NS = 'http://schemas.xmlsoap.org/wsdl/'
const WSDL_SOAP_NS = 'http://schemas.xmlsoap.org/wsdl/soap/'
const XS_NS = 'http://www.w3.org/2001/XMLSchema'
const OPERATIONS = ['LoadAsset', 'PurgeAsset', 'GetTaskStatus'] as const

// ---------------------------------------------------------------------------------------------
// xmllint

const xmllintMissing = spawnSync('xmllint', ['--version']).error !== undefined
const needsXmllint = xmllintMissing
  ? 'SKIPPED: xmllint is missing (apt-get install libxml2-utils; .ci/run installs it)'
  : false
if (xmllintMissing) console.error(`\n*** ${needsXmllint} ***\n`)

interface Lint {
  readonly ok: boolean
  /** xmllint's exit code: 3 for an invalid document, 5 for a schema that does not compile. */
  readonly status: number | null
  readonly output: string
}

/** Runs xmllint on `xml` given on standard input; `ok` is a zero exit. */
function xmllint(args: string[], xml: string): Lint {
  const r = spawnSync('xmllint', [...args, '-'], { input: xml, encoding: 'utf8' })
  if (r.error) throw r.error
  return { ok: r.status === 0, status: r.status, output: `${r.stdout}${r.stderr}` }
}

function validate(xml: string): Lint {
  return xmllint(['--noout', '--schema', XSD_PATH], xml)
}

function assertValid(xml: string): void {
  const r = validate(xml)
  assert.ok(r.ok, `expected valid against apubi.xsd:\n${xml}\n${r.output}`)
}

function assertInvalid(xml: string, because: RegExp): void {
  const r = validate(xml)
  assert.ok(!r.ok, `expected apubi.xsd to reject:\n${xml}`)
  assert.match(r.output, because)
}

// ---------------------------------------------------------------------------------------------
// A small namespace-aware tree, enough to cut an element out of an envelope and to read a WSDL

interface El {
  readonly uri: string
  readonly local: string
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly name: string; readonly value: string }>
  /** Every namespace binding in scope on this element, inherited ones included ('' is the default). */
  readonly scope: ReadonlyMap<string, string>
  /** Bindings declared on this element itself. */
  readonly declared: ReadonlySet<string>
  readonly children: Array<El | string>
}

function parseXml(xml: string): El {
  const parser = new SaxesParser({ xmlns: true })
  const stack: El[] = []
  let root: El | undefined
  parser.on('error', (e) => {
    throw e
  })
  parser.on('opentag', (tag) => {
    const parent = stack.at(-1)
    const scope = new Map(parent?.scope)
    for (const [prefix, uri] of Object.entries(tag.ns)) scope.set(prefix, uri)
    const el: El = {
      uri: tag.uri,
      local: tag.local,
      name: tag.name,
      attributes: Object.values(tag.attributes).map((a) => ({ name: a.name, value: a.value })),
      scope,
      declared: new Set(Object.keys(tag.ns)),
      children: [],
    }
    if (parent) parent.children.push(el)
    else root = el
    stack.push(el)
  })
  parser.on('text', (text) => stack.at(-1)?.children.push(text))
  parser.on('cdata', (text) => stack.at(-1)?.children.push(text))
  parser.on('closetag', () => stack.pop())
  parser.write(xml).close()
  assert.ok(root, 'no root element')
  return root
}

function elements(el: El): El[] {
  return el.children.filter((c): c is El => typeof c !== 'string')
}

function child(el: El, uri: string, local: string): El {
  const found = elements(el).filter((c) => c.uri === uri && c.local === local)
  assert.equal(found.length, 1, `<${el.name}> must hold exactly one {${uri}}${local}`)
  return found[0] as El
}

function textOf(el: El): string {
  return el.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('')
}

function attr(el: El, name: string): string | undefined {
  return el.attributes.find((a) => a.name === name)?.value
}

/** Serialises `el` as a document of its own: the bindings it inherited are declared on it. */
function serialize(el: El, top = true): string {
  const inherited = top ? [...el.scope].filter(([prefix]) => !el.declared.has(prefix)) : []
  const declarations = inherited.map(([prefix, uri]) => `${prefix === '' ? 'xmlns' : `xmlns:${prefix}`}="${escapeXml(uri)}"`)
  const attributes = [...declarations, ...el.attributes.map((a) => `${a.name}="${escapeXml(a.value)}"`)]
  const open = [el.name, ...attributes].join(' ')
  const content = el.children.map((c) => (typeof c === 'string' ? escapeXml(c) : serialize(c, false))).join('')
  return `<${open}>${content}</${el.name}>`
}

/** The one element inside the SOAP Body of a rendered envelope. */
function bodyChild(envelopeXml: string): El {
  const envelope = parseXml(envelopeXml)
  assert.equal(envelope.uri, SOAP_ENV_NS)
  assert.equal(envelope.local, 'Envelope')
  const inBody = elements(child(envelope, SOAP_ENV_NS, 'Body'))
  assert.equal(inBody.length, 1, 'the Body must hold exactly one element')
  return inBody[0] as El
}

/** The element inside a fault's `detail` (unqualified, as SOAP 1.1 says). */
function faultDetail(envelopeXml: string): El {
  const fault = bodyChild(envelopeXml)
  assert.equal(fault.uri, SOAP_ENV_NS)
  assert.equal(fault.local, 'Fault')
  const inDetail = elements(child(fault, '', 'detail'))
  assert.equal(inDetail.length, 1, 'the detail must hold exactly one element')
  return inDetail[0] as El
}

// ---------------------------------------------------------------------------------------------

describe('apubi.xsd and apubi.wsdl are valid on their own', () => {
  it('the XSD compiles as a schema', { skip: needsXmllint }, () => {
    // xmllint compiles --schema before it reads the instance; this one is refused only as a document.
    const r = validate(`<TaskId xmlns="${APUBI_NS}">x</TaskId>`)
    assert.equal(r.status, 3, r.output)
    assert.doesNotMatch(r.output, /failed to compile|Schemas parser error/)
    assert.match(r.output, /No matching global declaration available for the validation root/)
  })

  it('the XSD declares exactly the message elements of the WSDL', async () => {
    const schema = parseXml(await readFile(XSD_PATH, 'utf8'))
    assert.equal(attr(schema, 'targetNamespace'), APUBI_NS)
    assert.equal(attr(schema, 'elementFormDefault'), 'qualified')
    const declared = elements(schema)
      .filter((e) => e.uri === XS_NS && e.local === 'element')
      .map((e) => attr(e, 'name'))
    assert.deepEqual(declared.sort(), [
      'ExceptionWS',
      'GetTaskStatus',
      'GetTaskStatusResponse',
      'LoadAsset',
      'LoadAssetResponse',
      'PurgeAsset',
      'PurgeAssetResponse',
    ])
  })

  it('the WSDL is well-formed', { skip: needsXmllint }, async () => {
    const r = xmllint(['--noout'], await readFile(WSDL_PATH, 'utf8'))
    assert.ok(r.ok, r.output)
  })

  // No WSDL 1.1 schema ships with xmllint or in a Debian package as a file, and the tests reach no
  // network: this checks by hand what that schema and the WS-I Basic Profile would.
  it('the WSDL is document/literal wrapped with input, output and fault on every operation', async () => {
    const wsdl = parseXml(await readFile(WSDL_PATH, 'utf8'))
    assert.equal(`${wsdl.uri} ${wsdl.local}`, `${WSDL_NS} definitions`)
    assert.equal(attr(wsdl, 'targetNamespace'), APUBI_NS)
    const resolve = (el: El, qname: string | undefined): string => {
      assert.ok(qname, `<${el.name}> lacks a QName attribute`)
      const [prefix, local] = qname.includes(':') ? qname.split(':') : ['', qname]
      const uri = el.scope.get(prefix ?? '')
      assert.ok(uri !== undefined, `unbound prefix in ${qname}`)
      return `{${uri}}${local}`
    }
    const tns = (local: string) => `{${APUBI_NS}}${local}`
    const all = (parent: El, local: string) => elements(parent).filter((e) => e.uri === WSDL_NS && e.local === local)

    const imports = elements(child(child(wsdl, WSDL_NS, 'types'), XS_NS, 'schema'))
    assert.deepEqual(
      imports.map((e) => [e.local, attr(e, 'namespace'), attr(e, 'schemaLocation')]),
      [['import', APUBI_NS, 'apubi.xsd']],
    )

    const messages = new Map(
      all(wsdl, 'message').map((m) => {
        const parts = elements(m)
        assert.equal(parts.length, 1, `message ${attr(m, 'name')} must have one part`)
        return [tns(attr(m, 'name') ?? ''), resolve(parts[0] as El, attr(parts[0] as El, 'element'))]
      }),
    )

    const portTypes = all(wsdl, 'portType')
    assert.equal(portTypes.length, 1)
    const portType = portTypes[0] as El
    const bindings = all(wsdl, 'binding')
    assert.equal(bindings.length, 1)
    const binding = bindings[0] as El
    assert.equal(resolve(binding, attr(binding, 'type')), tns(attr(portType, 'name') ?? ''))
    const soapBinding = child(binding, WSDL_SOAP_NS, 'binding')
    assert.equal(attr(soapBinding, 'style'), 'document')
    assert.equal(attr(soapBinding, 'transport'), 'http://schemas.xmlsoap.org/soap/http')

    assert.deepEqual(all(portType, 'operation').map((o) => attr(o, 'name')), [...OPERATIONS])
    assert.deepEqual(all(binding, 'operation').map((o) => attr(o, 'name')), [...OPERATIONS])
    for (const name of OPERATIONS) {
      const abstract = all(portType, 'operation').find((o) => attr(o, 'name') === name) as El
      const concrete = all(binding, 'operation').find((o) => attr(o, 'name') === name) as El
      const message = (local: string) => messages.get(resolve(abstract, attr(child(abstract, WSDL_NS, local), 'message')))
      // Wrapped: the input element is named for the operation, the output for its response.
      assert.equal(message('input'), tns(name))
      assert.equal(message('output'), tns(`${name}Response`))
      assert.equal(message('fault'), tns('ExceptionWS'))
      child(concrete, WSDL_SOAP_NS, 'operation') // asserts there is exactly one
      for (const local of ['input', 'output']) {
        const io = child(concrete, WSDL_NS, local)
        assert.equal(attr(io, 'name'), attr(child(abstract, WSDL_NS, local), 'name'))
        assert.equal(attr(child(io, WSDL_SOAP_NS, 'body'), 'use'), 'literal')
      }
      const fault = child(concrete, WSDL_NS, 'fault')
      assert.equal(attr(fault, 'name'), attr(child(abstract, WSDL_NS, 'fault'), 'name'))
      const soapFault = child(fault, WSDL_SOAP_NS, 'fault')
      assert.equal(attr(soapFault, 'name'), attr(fault, 'name'))
      assert.equal(attr(soapFault, 'use'), 'literal')
    }

    const service = child(wsdl, WSDL_NS, 'service')
    assert.equal(attr(service, 'name'), 'APUBIService')
    const port = child(service, WSDL_NS, 'port')
    assert.equal(resolve(port, attr(port, 'binding')), tns(attr(binding, 'name') ?? ''))
    assert.equal(attr(child(port, WSDL_SOAP_NS, 'address'), 'location'), 'http://apubi.invalid/apubi')
  })

  it('the soap client reads the WSDL and its schema from disk into the three operations', async () => {
    const client = await createClientAsync(WSDL_PATH)
    const ops = client.describe().APUBIService.APUBIPort
    assert.deepEqual(Object.keys(ops), [...OPERATIONS])
    assert.deepEqual(Object.keys(ops.LoadAsset.input), ['SourceAssetUrl', 'DestinationAsset', 'MetaData'])
    assert.deepEqual(Object.keys(ops.GetTaskStatus.output), ['Status', 'DestinationAsset'])
  })
})

describe('loadServiceDescription', () => {
  it('puts the endpoint in the address and the schema import', async () => {
    const url = 'http://publisher.example:8080/apubi'
    const { wsdl, schemas } = loadServiceDescription(url)
    const root = parseXml(wsdl)
    const port = child(child(root, WSDL_NS, 'service'), WSDL_NS, 'port')
    assert.equal(attr(child(port, WSDL_SOAP_NS, 'address'), 'location'), url)
    const imported = child(child(child(root, WSDL_NS, 'types'), XS_NS, 'schema'), XS_NS, 'import')
    assert.equal(attr(imported, 'schemaLocation'), `${url}?xsd=apubi.xsd`)
    assert.deepEqual([...schemas.keys()], ['apubi.xsd'])
    assert.equal(schemas.get('apubi.xsd'), await readFile(XSD_PATH, 'utf8'))
    assert.doesNotMatch(wsdl, /apubi\.invalid/)
  })

  it('escapes the endpoint for the attribute', () => {
    const url = "https://host:8443/a&b/'apubi'"
    const root = parseXml(loadServiceDescription(url).wsdl)
    const port = child(child(root, WSDL_NS, 'service'), WSDL_NS, 'port')
    assert.equal(attr(child(port, WSDL_SOAP_NS, 'address'), 'location'), url)
  })

  for (const url of ['/apubi', 'ftp://host/apubi', 'http://host/apubi?x=1', 'http://host/apubi#f', 'http:///apubi', '']) {
    it(`refuses ${JSON.stringify(url)} as an endpoint`, () => {
      assert.throws(() => loadServiceDescription(url), (e) => e instanceof PublishError && e.code === 'ERR_CONFIG_INVALID')
    })
  }
})

describe('every response the server renders is valid against apubi.xsd', { skip: needsXmllint }, () => {
  // Values that need escaping, multi-byte UTF-8, whitespace that must survive as it is.
  const awkward = [
    'task-0193b6f0-7c1e-7000-8000-000000000001',
    `a&b<c>d"e'f`,
    'caf\u00e9 \u2603 \u65e5\u672c \u{1F600}',
    '  leading and trailing spaces  ',
    ']]> and &amp; already escaped',
  ]
  const destinations = [
    ...awkward,
    'ftp://user:p%40ss@cdn:21/data/cdn/movie_01072015100045.ts',
    'ftp://user:password@CDN:21/data/cdn/',
    'Folder_01/',
    'movie_01072015100045',
    '',
  ]
  const responses: SoapResponse[] = [
    ...awkward.flatMap((taskId): SoapResponse[] => [
      { operation: 'LoadAsset', taskId },
      { operation: 'PurgeAsset', taskId },
    ]),
    ...(['SUCCESS', 'FAILED', 'IN_PROGRESS'] as TaskStatus[]).flatMap((status): SoapResponse[] => [
      { operation: 'GetTaskStatus', status },
      ...destinations.map((destinationAsset): SoapResponse => ({ operation: 'GetTaskStatus', status, destinationAsset })),
    ]),
  ]

  for (const response of responses) {
    it(`${response.operation}Response ${JSON.stringify(response)}`, () => {
      const envelope = renderResponse(response)
      const answer = bodyChild(envelope)
      assertValid(serialize(answer))
      assert.equal(`${answer.uri} ${answer.local}`, `${APUBI_NS} ${response.operation}Response`)
      const values = elements(answer).map((e) => [e.local, textOf(e)])
      if (response.operation === 'GetTaskStatus') {
        const expected = [['Status', response.status]]
        if (response.destinationAsset !== undefined) expected.push(['DestinationAsset', response.destinationAsset])
        assert.deepEqual(values, expected)
      } else {
        assert.deepEqual(values, [['TaskId', response.taskId]])
      }
    })
  }

  it('answers remembered are the bytes rendered, whichever status shares a destination', () => {
    const answer = rememberStatusAnswers()
    for (let round = 0; round < 2; round++) {
      for (const response of responses) assert.deepEqual(answer(response), Buffer.from(renderResponse(response)), JSON.stringify(response))
    }
  })

  const faults = [
    new PublishError('ERR_TASK_NOT_FOUND'),
    new PublishError('ERR_POLICY_DENIED', `Location not allowed: a&b<c>d"e'f caf\u00e9 \u{1F600}`),
    new PublishError('ERR_REQUEST_INVALID', '  SourceAssetUrl is missing'),
    new Error('a bug, never shown'),
  ]
  for (const error of faults) {
    it(`the ExceptionWS detail of a fault for ${error.message}`, () => {
      const detail = faultDetail(renderFault(toFault(error)))
      assertValid(serialize(detail))
      assert.equal(`${detail.uri} ${detail.local}`, `${APUBI_NS} ExceptionWS`)
      const message = child(detail, '', 'message')
      assert.equal(textOf(message), error instanceof PublishError ? error.message : 'Internal error')
    })
  }
})

describe('apubi.xsd rejects the sloppy shapes the vendor samples show', { skip: needsXmllint }, () => {
  /** `<ns:name>` in our namespace around `content`, as the server renders it. */
  const ns = (name: string, content: string) => `<ns:${name} xmlns:ns="${APUBI_NS}">${content}</ns:${name}>`
  const status = (content: string) => ns('GetTaskStatusResponse', content)
  const expectedStatus = /Expected is \( \{wfm:APUBI\/v1\/schemas\}Status \)/
  const rejected: Array<[string, string, RegExp]> = [
    ['a Status outside the enumeration', status('<ns:Status>DONE</ns:Status>'), /'DONE' is not an element of the set/],
    ['a lower-case Status', status('<ns:Status>success</ns:Status>'), /not an element of the set/],
    ['a Status padded with spaces', status('<ns:Status> SUCCESS </ns:Status>'), /not an element of the set/],
    ['a response without Status', status('<ns:DestinationAsset>x</ns:DestinationAsset>'), expectedStatus],
    [
      'DestinationAsset before Status',
      status('<ns:DestinationAsset>x</ns:DestinationAsset><ns:Status>SUCCESS</ns:Status>'),
      expectedStatus,
    ],
    ['unqualified response fields', status('<Status>SUCCESS</Status>'), /Element 'Status': This element is not expected/],
    ['a LoadAssetResponse without TaskId', ns('LoadAssetResponse', ''), /Missing child element/],
    ['two TaskIds', ns('PurgeAssetResponse', '<ns:TaskId>a</ns:TaskId><ns:TaskId>b</ns:TaskId>'), /not expected/],
    [
      'the misspelled namespace wfm:/APUBI/v1/schemas',
      '<GetTaskStatusResponse xmlns="wfm:/APUBI/v1/schemas"><Status>SUCCESS</Status></GetTaskStatusResponse>',
      /No matching global declaration/,
    ],
    [
      'a qualified message in ExceptionWS',
      ns('ExceptionWS', '<ns:message>x</ns:message>'),
      /message': This element is not expected. Expected is \( message \)/,
    ],
    ['an empty ExceptionWS', ns('ExceptionWS', ''), /Missing child element/],
  ]
  for (const [what, xml, because] of rejected) {
    it(`rejects ${what}`, () => assertInvalid(xml, because))
  }

  // The request side documents what clients send, the vendor's own samples included.
  const accepted: Array<[string, string]> = [
    [
      'the vendor GetTaskStatus request, with its stray ns2 declaration',
      `<GetTaskStatus xmlns="${APUBI_NS}" xmlns:ns2="wfm:/APUBI/v1/schemas">\n  <TaskId>TestAssetA</TaskId>\n</GetTaskStatus>`,
    ],
    [
      'a LoadAsset with trailing newlines and any MetaData',
      `<LoadAsset xmlns="${APUBI_NS}">` +
        '<SourceAssetUrl>ftp://user:password@CIS:21/repository/movie.ts\n</SourceAssetUrl>' +
        '<DestinationAsset>Folder_01/TestAsset_1080p.mp4\n</DestinationAsset>' +
        '<MetaData>text <metadata key="k">v</metadata><x:Key xmlns:x="urn:x">k</x:Key><Value>v</Value></MetaData>' +
        '</LoadAsset>',
    ],
    [
      'a LoadAsset without MetaData',
      `<LoadAsset xmlns="${APUBI_NS}"><SourceAssetUrl>ftp://h/r/</SourceAssetUrl><DestinationAsset>Folder_01/ </DestinationAsset></LoadAsset>`,
    ],
    [
      'a PurgeAsset with an empty MetaData',
      `<PurgeAsset xmlns="${APUBI_NS}"><DestinationAsset>movie_01</DestinationAsset><MetaData/></PurgeAsset>`,
    ],
  ]
  for (const [what, xml] of accepted) {
    it(`accepts ${what}`, () => assertValid(xml))
  }

  it('names the source SourceAssetUrl only: the SourceAssetURL spelling is the server being lenient', () => {
    assertInvalid(
      `<LoadAsset xmlns="${APUBI_NS}"><SourceAssetURL>ftp://h/a.ts</SourceAssetURL><DestinationAsset>a.ts</DestinationAsset></LoadAsset>`,
      /SourceAssetURL': This element is not expected/,
    )
  })
})

// ---------------------------------------------------------------------------------------------

describe('a WSDL-driven client against a running server', () => {
  const pollMs = 50
  const patienceMs = 20_000

  it('publishes, polls, purges and gets a fault for an unknown TaskId', async (t) => {
    const server = await startServer()
    t.after(() => server.stop())

    const wsdlResponse = await fetch(`${server.url}?wsdl`)
    assert.equal(wsdlResponse.status, 200)
    assert.equal(wsdlResponse.headers.get('content-type'), 'text/xml; charset=utf-8')
    assert.match(await wsdlResponse.text(), new RegExp(`schemaLocation="${server.url}\\?xsd=apubi\\.xsd"`))
    const xsdResponse = await fetch(`${server.url}?xsd=apubi.xsd`)
    assert.equal(xsdResponse.status, 200)
    assert.equal(xsdResponse.headers.get('content-type'), 'text/xml; charset=utf-8')
    assert.equal(await xsdResponse.text(), await readFile(XSD_PATH, 'utf8'))

    const client = await createClientAsync(`${server.url}?wsdl`)
    // Every answer on the wire must be valid too, not only the ones rendered in process.
    const checkLast = () => {
      const body = client.lastResponse as string
      if (!xmllintMissing) assertValid(serialize(bodyChild(body)))
    }
    const call = async (operation: string, args: object): Promise<Record<string, unknown>> => {
      try {
        const [result] = await client[`${operation}Async`](args)
        checkLast()
        return result
      } catch (e) {
        throw new Error(`${operation} failed.\nSent:\n${client.lastRequest}\nReceived:\n${client.lastResponse}`, { cause: e })
      }
    }
    const settle = async (taskId: string): Promise<Record<string, unknown>> => {
      const deadline = Date.now() + patienceMs
      for (;;) {
        const status = await call('GetTaskStatus', { TaskId: taskId })
        if (status.Status !== 'IN_PROGRESS') return status
        assert.ok(Date.now() < deadline, `task ${taskId} still IN_PROGRESS after ${patienceMs} ms`)
        await new Promise((r) => setTimeout(r, pollMs))
      }
    }

    const content = `movie bytes \u{1F3AC}\n`.repeat(1000)
    await mkdir(join(server.fileRoot, 'repository'), { recursive: true })
    const source = join(server.fileRoot, 'repository', 'movie.ts')
    await writeFile(source, content)

    const loaded = await call('LoadAsset', {
      SourceAssetUrl: pathToFileURL(source).href,
      DestinationAsset: 'Folder_01/TestAsset_1080p.ts',
    })
    assert.equal(typeof loaded.TaskId, 'string')
    const load = await settle(loaded.TaskId as string)
    assert.equal(load.Status, 'SUCCESS', `LoadAsset ended ${JSON.stringify(load)}`)
    const published = load.DestinationAsset
    assert.ok(typeof published === 'string', `no DestinationAsset in ${JSON.stringify(load)}`)
    assert.match(published, /Folder_01\/TestAsset_1080p\.ts$/)
    // A relative DestinationAsset lands under the CDN base, by default file://<data dir>/cdn/.
    const file = new URL(published, pathToFileURL(join(server.dataDir, 'cdn') + '/'))
    assert.equal(await readFile(file, 'utf8'), content)

    const purged = await call('PurgeAsset', { DestinationAsset: published })
    assert.equal(typeof purged.TaskId, 'string')
    assert.notEqual(purged.TaskId, loaded.TaskId)
    const purge = await settle(purged.TaskId as string)
    assert.equal(purge.Status, 'SUCCESS', `PurgeAsset ended ${JSON.stringify(purge)}`)
    await assert.rejects(stat(file), { code: 'ENOENT' })

    await assert.rejects(client.GetTaskStatusAsync({ TaskId: 'no-such-task' }), (e: any) => {
      assert.equal(e.response?.status, 500)
      const fault = e.root?.Envelope?.Body?.Fault
      assert.ok(fault, `no parsed fault in ${String(e)}\n${client.lastResponse ?? e.response?.data}`)
      assert.equal(fault.faultcode, 'soapenv:Server')
      assert.equal(fault.faultstring, 'Task Id does not exist')
      assert.equal(typeof fault.detail?.ExceptionWS?.message, 'string')
      return true
    })
    if (!xmllintMissing) assertValid(serialize(faultDetail(client.lastResponse as string)))
  })
})
