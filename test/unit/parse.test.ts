import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { isPublishError, type Code } from '../../src/errors.js'
import { DEFAULT_PARSE_LIMITS, escapeXml, parseRequest, type SoapRequest } from '../../src/soap/index.js'

const parse = (xml: string) => parseRequest(xml, DEFAULT_PARSE_LIMITS)
const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/'
const env = (body: string, prefix = 'soap', header = '') =>
  `<${prefix}:Envelope xmlns:${prefix}="${SOAP11}">${header}<${prefix}:Body>${body}</${prefix}:Body></${prefix}:Envelope>`
const request = (name: string) => readFileSync(new URL(`../soap/requests/${name}`, import.meta.url), 'utf8')

describe('parseRequest accepts what the real client sends', () => {
  const cases: Array<[string, string, SoapRequest]> = [
    ['the vendor GetTaskStatus sample', request('vendor-GetTaskStatus.xml'), { operation: 'GetTaskStatus', taskId: 'TestAssetA' }],
    ['no namespace on the operation', env('<GetTaskStatus><TaskId>t1</TaskId></GetTaskStatus>'), { operation: 'GetTaskStatus', taskId: 't1' }],
    ['the misspelt namespace alone', env('<GetTaskStatus xmlns="wfm:/APUBI/v1/schemas"><TaskId>t1</TaskId></GetTaskStatus>'), { operation: 'GetTaskStatus', taskId: 't1' }],
    ['a prefixed operation and SOAP-ENV prefix', env('<a:GetTaskStatus xmlns:a="wfm:APUBI/v1/schemas"><a:TaskId> t1 </a:TaskId></a:GetTaskStatus>', 'SOAP-ENV'), { operation: 'GetTaskStatus', taskId: 't1' }],
    ['an XML declaration and a Header', `<?xml version="1.0" encoding="UTF-8"?>${env('<GetTaskStatus><TaskId>t1</TaskId></GetTaskStatus>', 'soapenv', '<soapenv:Header><x:Trace xmlns:x="urn:x">abc</x:Trace></soapenv:Header>')}`, { operation: 'GetTaskStatus', taskId: 't1' }],
    ['SourceAssetURL spelling and a trailing newline', env('<LoadAsset xmlns="wfm:APUBI/v1/schemas"><SourceAssetURL>ftp://u:p@h/a.ts\n</SourceAssetURL><DestinationAsset>Folder_01/ </DestinationAsset></LoadAsset>'), { operation: 'LoadAsset', sourceAssetUrl: 'ftp://u:p@h/a.ts', destinationAsset: 'Folder_01/' }],
    ['CDATA values and escaped characters', env('<LoadAsset><SourceAssetUrl><![CDATA[ftp://h/a&b.ts]]></SourceAssetUrl><DestinationAsset>x&amp;y</DestinationAsset></LoadAsset>'), { operation: 'LoadAsset', sourceAssetUrl: 'ftp://h/a&b.ts', destinationAsset: 'x&y' }],
    ['PurgeAsset without MetaData', request('vendor-PurgeAsset.xml'), { operation: 'PurgeAsset', destinationAsset: 'Folder_01/' }],
  ]
  for (const [name, xml, expected] of cases) {
    it(name, () => assert.deepEqual(parse(xml), expected))
  }

  it('keeps MetaData verbatim and reads key attributes', () => {
    const parsed = parse(request('vendor-LoadAsset-file.xml'))
    assert.equal(parsed.operation, 'LoadAsset')
    assert.ok(parsed.operation === 'LoadAsset' && parsed.metadata)
    assert.match(parsed.metadata.xml, /^<MetaData>\s*<metadata key="title">Test Asset<\/metadata>[\s\S]*<\/MetaData>$/)
    assert.deepEqual(parsed.metadata.pairs, [
      { key: 'title', value: 'Test Asset' },
      { key: 'resolution', value: '1080p' },
    ])
  })

  it('reads Key/Value pairs and simple leaves, and keeps astral characters in place', () => {
    const xml = env(
      '<LoadAsset><SourceAssetUrl>file:///a</SourceAssetUrl><DestinationAsset>d</DestinationAsset>' +
        '<MetaData><Item><Key>genre</Key><Value>drama 🎬</Value></Item><Key>year</Key><Value>2015</Value><Title>Film</Title></MetaData></LoadAsset>',
    )
    const parsed = parse(xml)
    assert.ok(parsed.operation === 'LoadAsset' && parsed.metadata)
    assert.ok(parsed.metadata.xml.endsWith('<Title>Film</Title></MetaData>'))
    assert.deepEqual(parsed.metadata.pairs, [
      { key: 'genre', value: 'drama 🎬' },
      { key: 'year', value: '2015' },
      { key: 'Title', value: 'Film' },
    ])
  })
})

const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'
const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd'
const PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
const security = (token: string, ns = WSSE) => `<w:Security xmlns:w="${ns}" xmlns:u="${WSU}"><w:UsernameToken>${token}</w:UsernameToken></w:Security>`
const secured = (token: string, ns = WSSE) => env('<GetTaskStatus><TaskId>t</TaskId></GetTaskStatus>', 'soap', `<soap:Header>${security(token, ns)}</soap:Header>`)

describe('parseRequest reads a WS-Security UsernameToken from the Header', () => {
  it('PasswordDigest with its nonce and Created, by namespace', () => {
    const token = `<w:Username> wfm </w:Username><w:Password Type="${PROFILE}#PasswordDigest">ZGlnZXN0</w:Password><w:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">bm9uY2U=</w:Nonce><u:Created>2026-11-28T12:00:00Z</u:Created>`
    assert.deepEqual(parse(secured(token)), {
      operation: 'GetTaskStatus',
      taskId: 't',
      usernameToken: { username: 'wfm', password: 'ZGlnZXN0', passwordType: 'PasswordDigest', nonce: 'bm9uY2U=', created: '2026-11-28T12:00:00Z' },
    })
  })

  it('a Password without Type is PasswordText', () => {
    const parsed = parse(secured('<w:Username>u</w:Username><w:Password>p</w:Password>'))
    assert.deepEqual(parsed.usernameToken, { username: 'u', password: 'p', passwordType: 'PasswordText' })
  })

  it('ignores a Security element of another namespace, and a Security without a UsernameToken', () => {
    assert.equal(parse(secured('<w:Username>u</w:Username><w:Password>p</w:Password>', 'urn:not-wsse')).usernameToken, undefined)
    const timestampOnly = env('<GetTaskStatus><TaskId>t</TaskId></GetTaskStatus>', 'soap', `<soap:Header><w:Security xmlns:w="${WSSE}"><w:Timestamp/></w:Security></soap:Header>`)
    assert.deepEqual(parse(timestampOnly), { operation: 'GetTaskStatus', taskId: 't' })
  })
})

describe('parseRequest refuses, naming the problem', () => {
  const deep = '<a>'.repeat(100) + '</a>'.repeat(100)
  const cases: Array<[string, string, Code, RegExp]> = [
    ['not XML', 'hello', 'ERR_REQUEST_INVALID', /Malformed XML/],
    ['a truncated envelope', env('<GetTaskStatus><TaskId>t1</TaskId>').slice(0, -20), 'ERR_REQUEST_INVALID', /Malformed XML/],
    ['a DOCTYPE', `<!DOCTYPE x [<!ENTITY a "b">]>${env('<GetTaskStatus><TaskId>&a;</TaskId></GetTaskStatus>')}`, 'ERR_REQUEST_INVALID', /DOCTYPE/],
    ['a processing instruction', `${env('<?evil x?><GetTaskStatus><TaskId>t</TaskId></GetTaskStatus>')}`, 'ERR_REQUEST_INVALID', /Processing instructions/],
    ['a SOAP 1.2 envelope', '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>', 'ERR_REQUEST_INVALID', /SOAP 1.1 Envelope/],
    ['no Body', `<s:Envelope xmlns:s="${SOAP11}"><s:Header/></s:Envelope>`, 'ERR_REQUEST_INVALID', /no Body/],
    ['an empty Body', env(''), 'ERR_REQUEST_INVALID', /no operation/],
    ['two Bodies', `<s:Envelope xmlns:s="${SOAP11}"><s:Body/><s:Body/></s:Envelope>`, 'ERR_REQUEST_INVALID', /More than one Body/],
    ['an unknown operation', env('<CancelTask><TaskId>t</TaskId></CancelTask>'), 'ERR_UNKNOWN_OPERATION', /Unknown operation \{\}CancelTask/],
    ['our operation in a foreign namespace', env('<GetTaskStatus xmlns="urn:other"><TaskId>t</TaskId></GetTaskStatus>'), 'ERR_UNKNOWN_OPERATION', /urn:other/],
    ['two operations', env('<GetTaskStatus><TaskId>a</TaskId></GetTaskStatus><GetTaskStatus><TaskId>b</TaskId></GetTaskStatus>'), 'ERR_REQUEST_INVALID', /More than one operation/],
    ['a missing TaskId', env('<GetTaskStatus/>'), 'ERR_REQUEST_INVALID', /needs a non-empty TaskId/],
    ['a blank TaskId', env('<GetTaskStatus><TaskId>  \n</TaskId></GetTaskStatus>'), 'ERR_REQUEST_INVALID', /needs a non-empty TaskId/],
    ['a missing SourceAssetUrl', env('<LoadAsset><DestinationAsset>d</DestinationAsset></LoadAsset>'), 'ERR_REQUEST_INVALID', /needs a non-empty SourceAssetUrl/],
    ['a field given twice', env('<GetTaskStatus><TaskId>a</TaskId><TaskId>b</TaskId></GetTaskStatus>'), 'ERR_REQUEST_INVALID', /TaskId given twice/],
    ['elements inside a value', env('<GetTaskStatus><TaskId><b>a</b></TaskId></GetTaskStatus>'), 'ERR_REQUEST_INVALID', /TaskId must hold text only/],
    ['text in the Body', env('oops<GetTaskStatus><TaskId>a</TaskId></GetTaskStatus>'), 'ERR_REQUEST_INVALID', /Unexpected text in Body/],
    ['nesting past the limit', env(`<LoadAsset><MetaData>${deep}</MetaData></LoadAsset>`), 'ERR_REQUEST_INVALID', /Nesting deeper than 32/],
    ['too many elements', env(`<LoadAsset><MetaData>${'<a/>'.repeat(2_001)}</MetaData></LoadAsset>`), 'ERR_REQUEST_INVALID', /More than 2000 elements/],
    ['too many attributes', env(`<LoadAsset><MetaData><a ${Array.from({ length: 65 }, (_, i) => `a${i}="x"`).join(' ')}/></MetaData></LoadAsset>`), 'ERR_REQUEST_INVALID', /More than 64 attributes/],
    ['a huge attribute value', env(`<LoadAsset><MetaData><a key="${'k'.repeat(70_000)}">v</a></MetaData></LoadAsset>`), 'ERR_REQUEST_INVALID', /Attribute key of a longer than 65536 characters/],
    ['a huge value', env(`<GetTaskStatus><TaskId>${'x'.repeat(70_000)}</TaskId></GetTaskStatus>`), 'ERR_REQUEST_INVALID', /longer than 65536/],
    ['a control character through an XML 1.1 declaration', `<?xml version="1.1"?>${env('<GetTaskStatus><TaskId>a&#1;</TaskId></GetTaskStatus>')}`, 'ERR_REQUEST_INVALID', /Malformed XML: 1:\d+: malformed character entity/],
    ['a UsernameToken without a Password', secured('<w:Username>u</w:Username>'), 'ERR_REQUEST_INVALID', /needs a Username and a Password/],
    ['an unknown password type', secured('<w:Username>u</w:Username><w:Password Type="urn:x#Kerberos">p</w:Password>'), 'ERR_REQUEST_INVALID', /Unsupported password type urn:x#Kerberos/],
    ['a hex nonce', secured(`<w:Username>u</w:Username><w:Password>p</w:Password><w:Nonce EncodingType="urn:x#HexBinary">00</w:Nonce>`), 'ERR_REQUEST_INVALID', /Nonce must be Base64Binary/],
    ['two security headers', env('<GetTaskStatus><TaskId>t</TaskId></GetTaskStatus>', 'soap', `<soap:Header>${security('<w:Username>u</w:Username><w:Password>p</w:Password>').repeat(2)}</soap:Header>`), 'ERR_REQUEST_INVALID', /More than one UsernameToken/],
  ]
  for (const [name, xml, code, message] of cases) {
    it(name, () => {
      assert.throws(() => parse(xml), (e: unknown) => isPublishError(e, code) && message.test(e.message))
    })
  }
})

describe('escapeXml', () => {
  it('escapes markup and replaces what XML 1.0 cannot hold, keeping pairs of surrogates', () => {
    assert.equal(escapeXml('a<b>&"c"'), 'a&lt;b&gt;&amp;&quot;c&quot;')
    assert.equal(escapeXml('x\u0001y\u001Fz\uFFFE\uD800!\uDC00'), 'x\uFFFDy\uFFFDz\uFFFD\uFFFD!\uFFFD')
    assert.equal(escapeXml('tab\tnl\ncr\r 😀'), 'tab\tnl\ncr\r 😀')
  })
})
