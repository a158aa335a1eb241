// Property-based fuzzing of the envelope parser: whatever text arrives, parseRequest returns a
// request or throws a PublishError with a Client fault, never another exception, and always ends.
// The properties run in a child process, so that a parser stuck in a loop fails the test (the child
// is killed) instead of hanging the suite.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { loadConfig } from '../../src/config/index.js'
import { catalog, PublishError } from '../../src/errors.js'
import { APUBI_NS, DEFAULT_PARSE_LIMITS, parseRequest, SOAP_ENV_NS, WSSE_NS } from '../../src/soap/index.js'
import type { ParseLimits } from '../../src/soap/index.js'

/** Limits small enough for random documents to cross them. */
const TIGHT: ParseLimits = { maxDepth: 5, maxElements: 25, maxAttributes: 3, maxTextLength: 40 }
const RUNS = 2_000
/** Far beyond what the properties take (about a second each): reaching it means the parser hangs. */
const HANG_MS = 60_000

const requestsDir = new URL('../soap/requests/', import.meta.url).pathname
const samples = readdirSync(requestsDir)
  .filter((name) => name.endsWith('.xml') && !name.includes('.fault.'))
  .map((name) => readFileSync(requestsDir + name, 'utf8').replaceAll('@SOURCE@', 'file:///data/in/'))

/**
 * The contract: a request, or a PublishError whose code is a Client fault. A "Malformed XML" message
 * must carry saxes's line:column, so that an error of our own handlers (which the parser also turns
 * into a PublishError) cannot pass for malformed input. The parse must not depend on anything but
 * the text: the same text parses the same way twice (the GetTaskStatus memo relies on it).
 */
function holdsContract(xml: string, limits: ParseLimits): void {
  const attempt = () => {
    try {
      return { request: parseRequest(xml, limits) }
    } catch (e) {
      if (!(e instanceof PublishError)) throw new Error(`not a PublishError: ${(e as Error)?.stack ?? String(e)}`)
      if (catalog[e.code].fault !== 'Client') throw new Error(`${e.code} is not a Client fault: ${e.message}`)
      if (e.message.startsWith('Malformed XML') && !/^Malformed XML: \d+:\d+: /.test(e.message)) throw new Error(`not an XML error: ${e.message}`)
      return { code: e.code, message: e.message }
    }
  }
  assert.deepEqual(attempt(), attempt())
}

// Pieces that make random text look like our envelopes, so that it gets past the first character.
const tokens = fc.constantFrom(
  '<', '>', '/>', '</', '=', '"', "'", ' ', '\n', ':', '&', ';', '&lt;', '&amp;', '&#x41;', '&#0;', '&xxe;', '<!DOCTYPE x [<!ENTITY xxe "a">]>',
  '<![CDATA[', ']]>', '<!--', '-->', '<?', '?>', '<?xml version="1.0"?>', '\uFEFF', '\u0000', '\uD800',
  'xmlns', 'xmlns:soap', 'xmlns:s', 'soap:', 's:', `"${SOAP_ENV_NS}"`, `"${APUBI_NS}"`, '"wfm:/APUBI/v1/schemas"', `"${WSSE_NS}"`, '""',
  'Envelope', 'Header', 'Body', 'GetTaskStatus', 'LoadAsset', 'PurgeAsset', 'TaskId', 'SourceAssetUrl', 'SourceAssetURL', 'DestinationAsset',
  'MetaData', 'metadata', 'key', 'Key', 'Value', 'Security', 'UsernameToken', 'Username', 'Password', 'Type', 'Nonce', 'Created', 'x', 'file:///a',
)
const ENVELOPE_OPEN = `<soap:Envelope xmlns:soap="${SOAP_ENV_NS}">`
const tokenSoup = fc.array(tokens, { maxLength: 120 }).map((parts) => `${ENVELOPE_OPEN}<soap:Body>${parts.join('')}</soap:Body></soap:Envelope>`)

/** Arbitrary text where requests carry values, or where markup belongs. */
const embedded = fc
  .tuple(
    fc.constantFrom(
      `${ENVELOPE_OPEN}<soap:Body><GetTaskStatus xmlns="${APUBI_NS}"><TaskId>@</TaskId></GetTaskStatus></soap:Body></soap:Envelope>`,
      `${ENVELOPE_OPEN}<soap:Body><PurgeAsset xmlns="${APUBI_NS}"><DestinationAsset>d</DestinationAsset><MetaData>@</MetaData></PurgeAsset></soap:Body></soap:Envelope>`,
      `${ENVELOPE_OPEN}<soap:Header>@</soap:Header><soap:Body><GetTaskStatus><TaskId>t</TaskId></GetTaskStatus></soap:Body></soap:Envelope>`,
      `${ENVELOPE_OPEN}<soap:Body>@</soap:Body></soap:Envelope>`,
      `<soap:Envelope xmlns:soap="${SOAP_ENV_NS}" @><soap:Body/></soap:Envelope>`,
    ),
    fc.string({ unit: 'binary', maxLength: 200 }),
  )
  .map(([template, text]) => template.replace('@', () => text))

/** Random element trees, well-formed, with namespaces and prefixes from our vocabulary. */
const names = fc.constantFrom('Envelope', 'Header', 'Body', 'GetTaskStatus', 'LoadAsset', 'PurgeAsset', 'TaskId', 'SourceAssetUrl', 'DestinationAsset', 'MetaData', 'metadata', 'Key', 'Value', 'Security', 'UsernameToken', 'Password', 'x')
const namespaces = fc.constantFrom(SOAP_ENV_NS, APUBI_NS, 'wfm:/APUBI/v1/schemas', WSSE_NS, 'urn:other')
const texts = fc.oneof(fc.string({ maxLength: 12 }).map((s) => s.replace(/[<&]/g, '')), fc.constantFrom(' ', '\n  ', '<![CDATA[c<d]]>', '<!-- c -->', '&amp;', 'file:///data/in/a.ts', 'a/b.ts'))
const { element } = fc.letrec<{ element: string }>((tie) => ({
  element: fc
    .record({
      name: names,
      // A prefix is always declared on its element: undeclared prefixes are the token soup's business.
      naming: fc.oneof(
        fc.record({ prefix: fc.constantFrom('soap', 's', 'ns'), ns: namespaces }),
        fc.record({ prefix: fc.constant(''), ns: fc.option(fc.oneof(namespaces, fc.constant('')), { nil: undefined }) }),
      ),
      attributes: fc.array(fc.tuple(fc.constantFrom('key', 'name', 'Type', 'a', 'soap:mustUnderstand'), fc.string({ maxLength: 6 }).map((s) => s.replace(/["<&]/g, ''))), { maxLength: 4 }),
      children: fc.array(fc.oneof({ depthSize: 'small' }, texts, tie('element')), { maxLength: 4 }),
    })
    .map(({ name, naming: { prefix, ns }, attributes, children }) => {
      const tag = prefix ? `${prefix}:${name}` : name
      const declaration = ns === undefined ? '' : prefix ? ` xmlns:${prefix}="${ns}"` : ` xmlns="${ns}"`
      // soap:mustUnderstand needs the soap prefix in scope: the Envelope declares it.
      const attrs = [...new Map(attributes)].map(([n, v]) => ` ${n}="${v}"`).join('')
      return `<${tag}${declaration}${attrs}>${children.join('')}</${tag}>`
    }),
}))

/** Our three operations with their fields (any spelling), sometimes MetaData and an extra field; values mostly text. */
const operation = fc.constantFrom('LoadAsset', 'PurgeAsset', 'GetTaskStatus').chain((op) =>
  fc
    .record({
      ns: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(APUBI_NS, 'wfm:/APUBI/v1/schemas', '') }, { weight: 1, arbitrary: fc.constant('urn:other') }),
      source: fc.constantFrom('SourceAssetUrl', 'SourceAssetURL', 'sourceasseturl'),
      values: fc.array(fc.oneof({ weight: 8, arbitrary: texts }, { weight: 1, arbitrary: element }), { minLength: 2, maxLength: 2 }),
      metadata: fc.option(fc.array(fc.oneof(texts, element), { maxLength: 3 }), { nil: undefined }),
      extra: fc.array(fc.tuple(fc.constantFrom('TaskId', 'DestinationAsset', 'MetaData', 'Other'), texts), { maxLength: 1 }),
    })
    .map(({ ns, source, values, metadata, extra }) => {
      const names = op === 'LoadAsset' ? [source, 'DestinationAsset'] : op === 'PurgeAsset' ? ['DestinationAsset'] : ['TaskId']
      const fields: Array<[string, string]> = names.map((name, i) => [name, values[i]!])
      if (metadata && op !== 'GetTaskStatus') fields.push(['MetaData', metadata.join('')])
      return `<${op} xmlns="${ns}">${[...fields, ...extra].map(([f, v]) => `<${f}>${v}</${f}>`).join('')}</${op}>`
    }),
)
/** WS-Security headers, whole or in pieces. */
const security = fc
  .record({
    parts: fc.oneof({ weight: 3, arbitrary: fc.constant<string[]>(['Username', 'Password', 'Nonce', 'Created']) }, { weight: 1, arbitrary: fc.subarray<string>(['Username', 'Password', 'Nonce', 'Created']) }),
    type: fc.constantFrom('', 'PasswordText', 'PasswordDigest', 'Other'),
    value: texts,
  })
  .map(({ parts, type, value }) => {
    const child = (name: string) =>
      name === 'Created'
        ? `<wsu:Created>${value}</wsu:Created>`
        : `<wsse:${name}${name === 'Password' && type ? ` Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#${type}"` : ''}>${value}</wsse:${name}>`
    return `<wsse:Security xmlns:wsse="${WSSE_NS}" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken>${parts.map(child).join('')}</wsse:UsernameToken></wsse:Security>`
  })
const envelopes = fc
  .tuple(
    fc.option(fc.array(fc.oneof({ weight: 3, arbitrary: element }, { weight: 1, arbitrary: security }), { maxLength: 2 }), { nil: undefined }),
    fc.oneof({ weight: 6, arbitrary: operation.map((o) => [o]) }, { weight: 1, arbitrary: fc.array(fc.oneof(operation, element), { maxLength: 2 }) }),
  )
  .map(([header, body]) => `${ENVELOPE_OPEN}${header === undefined ? '' : `<soap:Header>${header.join('')}</soap:Header>`}<soap:Body>${body.join('')}</soap:Body></soap:Envelope>`)

/** One edit of a text: delete, insert, duplicate, replace or cut, at random places. */
const edit = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(([at, length]) => (s: string) => { const i = at % (s.length + 1); return s.slice(0, i) + s.slice(i + length) }),
  fc.tuple(fc.nat(), fc.oneof(tokens, fc.string({ maxLength: 8 }))).map(([at, text]) => (s: string) => { const i = at % (s.length + 1); return s.slice(0, i) + text + s.slice(i) }),
  fc.tuple(fc.nat(), fc.nat({ max: 60 })).map(([at, length]) => (s: string) => { const i = at % (s.length + 1); return s.slice(0, i + length) + s.slice(i) }),
  fc.tuple(fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })).map(([at, c]) => (s: string) => { const i = at % (s.length + 1); return s.slice(0, i) + c + s.slice(i + 1) }),
  fc.nat().map((at) => (s: string) => s.slice(0, at % (s.length + 1))),
)
const mutants = (base: fc.Arbitrary<string>) =>
  fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 6 })).map(([text, edits]) => edits.reduce((s, e) => e(s), text))

const properties: Record<string, fc.Arbitrary<string>> = {
  'arbitrary strings (any UTF-16, lone surrogates included)': fc.string({ unit: 'binary', maxLength: 400 }),
  'arbitrary strings as values, attributes and markup of an envelope': embedded,
  'soups of XML and APUBI tokens in a Body': tokenSoup,
  'random well-formed envelopes: our operations, fields, MetaData and security headers': envelopes,
  'the vendor samples, mutated': mutants(fc.constantFrom(...samples)),
  'random envelopes, mutated': mutants(envelopes),
}

if (process.env['APUBI_FUZZ_CHILD'] === undefined) {
  describe('parseRequest under fuzzing: a request or a Client fault, never another error, never a hang', () => {
    // One child process runs every property and prints a line per property as it ends.
    const results = new Map<string, (failure: string | undefined) => void>()
    const reported = new Map<string, Promise<string | undefined>>()
    for (const name of Object.keys(properties)) reported.set(name, new Promise((resolve) => results.set(name, resolve)))
    let child: ChildProcess | undefined
    before(() => {
      child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { env: { ...process.env, APUBI_FUZZ_CHILD: '1' }, stdio: ['ignore', 'pipe', 'inherit'] })
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const { name, failure } = JSON.parse(line) as { name: string; failure?: string }
        results.get(name)?.(failure)
      })
      child.on('exit', (code) => {
        for (const resolve of results.values()) resolve(`the fuzzing process ended (exit code ${code}) before this property did`)
      })
    })
    after(() => child?.kill())

    it('the sample requests parse, and the default limits are the configuration defaults', () => {
      for (const sample of samples) parseRequest(sample, DEFAULT_PARSE_LIMITS)
      const config = loadConfig({})
      assert.deepEqual(DEFAULT_PARSE_LIMITS, { maxDepth: config.maxXmlDepth, maxElements: config.maxXmlElements, maxAttributes: config.maxXmlAttributes, maxTextLength: config.maxXmlText })
    })

    for (const name of Object.keys(properties)) {
      it(name, async () => {
        let timer: NodeJS.Timeout | undefined
        const hang = new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`no result after ${HANG_MS} ms: the parser hangs on some input`), HANG_MS)
        })
        try {
          assert.equal(await Promise.race([reported.get(name)!, hang]), undefined)
        } finally {
          clearTimeout(timer)
        }
      })
    }
  })
} else {
  // Each input under both the default limits and tight ones, so that the limit paths are fuzzed too.
  for (const [name, arbitrary] of Object.entries(properties)) {
    const details = fc.check(
      fc.property(arbitrary, (xml) => {
        holdsContract(xml, DEFAULT_PARSE_LIMITS)
        holdsContract(xml, TIGHT)
      }),
      { numRuns: RUNS },
    )
    process.stdout.write(`${JSON.stringify({ name, ...(details.failed && { failure: fc.defaultReportMessage(details) ?? 'failed' }) })}\n`)
  }
}
