// Contract tests of the CDN APIs that cannot be reached from here: CloudFront CreateInvalidation
// (through the AWS SDK's client) and Akamai Fast Purge (EdgeGrid-signed), each sent to a local HTTPS
// endpoint that records the request. The test checks the request exactly: method, path, body and a
// signature recomputed from what arrived (SigV4 by an independent implementation here; EdgeGrid by
// the signer that passes Akamai's test vectors), then how answers map to task outcomes.
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { isPublishError } from '../../src/errors.js'
import { createInvalidator, edgeGridAuthorization, type InvalidationBase, type InvalidationCall } from '../../src/invalidate/index.js'
import { createLocationPolicy, createOutboundChecks } from '../../src/transfer/index.js'
import { makeTestCertificates, type TestCertificates } from '../servers/tls.js'

interface Received {
  method: string
  path: string
  headers: Record<string, string>
  body: string
}

let certificates: TestCertificates
let server: Server
let endpoint: string
const received: Received[] = []
let answer: { status: number; body: string; headers?: Record<string, string> } = { status: 200, body: '' }

before(async () => {
  certificates = makeTestCertificates()
  server = createServer({ cert: certificates.cert, key: certificates.key }, (req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      received.push({ method: req.method!, path: req.url!, headers: req.headers as Record<string, string>, body })
      res.writeHead(answer.status, answer.headers ?? {}).end(answer.body)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => {
  server?.close()
  certificates?.remove()
})

const outbound = () => ({ policy: createOutboundChecks(createLocationPolicy([])), timeoutMs: 5_000, tlsCa: certificates.ca })
const NOW = Date.UTC(2026, 11, 7, 1, 2, 3)

async function invalidate(base: InvalidationBase, kind: 'load' | 'purge', files: string[]): Promise<{ calls: InvalidationCall[]; error?: unknown }> {
  received.length = 0
  const target = createInvalidator([base], { outbound: outbound(), now: () => NOW }).forTarget('sftp://origin.example/data/cdn/show/')!
  const calls: InvalidationCall[] = []
  const signal = new AbortController().signal
  try {
    if (kind === 'load') await target.afterLoad(files, true, 'task-1-1', (c) => calls.push(c), signal)
    else await target.afterPurge(true, files, 'task-1-1', (c) => calls.push(c), signal)
    return { calls }
  } catch (error) {
    return { calls, error }
  }
}

describe('CloudFront CreateInvalidation (contract test)', () => {
  const keys = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }
  const base = (): InvalidationBase => ({
    base: 'sftp://origin.example/data/cdn/',
    publicUrl: 'https://d111111abcdef8.cloudfront.net/vod/',
    onFailure: 'fail',
    provider: { type: 'cloudfront', distributionId: 'EDFDVBD6EXAMPLE', region: 'us-east-1', endpoint, ...keys },
  })
  const created = `<?xml version="1.0" encoding="UTF-8"?>
<Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status><CreateTime>2026-12-07T01:02:03Z</CreateTime><InvalidationBatch><Paths><Quantity>1</Quantity><Items><Path>/vod/show/master.m3u8</Path></Items></Paths><CallerReference>task-1-1-0</CallerReference></InvalidationBatch></Invalidation>`

  it('sends the manifests of a republished package as paths, SigV4-signed, and records the answer', async () => {
    answer = { status: 201, body: created, headers: { 'Content-Type': 'text/xml', Location: `${endpoint}/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation/I2J0I21PCUYOIK` } }
    const { calls, error } = await invalidate(base(), 'load', ['master.m3u8', 'v0/index.m3u8', 'v0/seg1.ts'])
    assert.equal(error, undefined)
    assert.equal(received.length, 1)
    const [req] = received as [Received]
    assert.equal(req.method, 'POST')
    assert.equal(req.path, '/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation')
    assert.equal(
      req.body,
      '<?xml version="1.0" encoding="UTF-8"?><InvalidationBatch xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Paths><Quantity>2</Quantity><Items><Path>/vod/show/master.m3u8</Path><Path>/vod/show/v0/index.m3u8</Path></Items></Paths><CallerReference>task-1-1-0</CallerReference></InvalidationBatch>',
    )
    assert.match(req.headers['authorization']!, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/cloudfront\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/)
    assert.equal(req.headers['authorization'], sigV4(req, keys.secretAccessKey), 'the signature covers the request as it arrived')
    assert.deepEqual(calls, [
      {
        provider: 'cloudfront',
        request: `POST ${endpoint}/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation`,
        subject: '/vod/show/master.m3u8 /vod/show/v0/index.m3u8',
        status: 201,
        answer: 'Invalidation I2J0I21PCUYOIK InProgress',
        ok: true,
      },
    ])
  })

  it('sends a purged directory as one wildcard path', async () => {
    answer = { status: 201, body: created, headers: { 'Content-Type': 'text/xml' } }
    await invalidate(base(), 'purge', [])
    assert.match(received[0]!.body, /<Items><Path>\/vod\/show\/\*<\/Path><\/Items>/)
  })

  it('a refusal is ERR_INVALIDATION, throttling and 5xx ERR_INVALIDATION_UNAVAILABLE, each recorded', async () => {
    const error = (code: string, message: string) => `<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`
    answer = { status: 404, body: error('NoSuchDistribution', 'The specified distribution does not exist.'), headers: { 'Content-Type': 'text/xml' } }
    const refused = await invalidate(base(), 'purge', [])
    assert.ok(isPublishError(refused.error, 'ERR_INVALIDATION'), String(refused.error))
    assert.equal(refused.calls[0]?.status, 404)
    assert.match(refused.calls[0]!.answer, /NoSuchDistribution/)
    answer = { status: 400, body: error('Throttling', 'Rate exceeded'), headers: { 'Content-Type': 'text/xml' } }
    assert.ok(isPublishError((await invalidate(base(), 'purge', [])).error, 'ERR_INVALIDATION_UNAVAILABLE'))
    answer = { status: 503, body: error('ServiceUnavailable', 'try later'), headers: { 'Content-Type': 'text/xml' } }
    assert.ok(isPublishError((await invalidate(base(), 'purge', [])).error, 'ERR_INVALIDATION_UNAVAILABLE'))
    assert.ok(!JSON.stringify(refused).includes(keys.secretAccessKey))
  })
})

describe('Akamai Fast Purge (contract test)', () => {
  const credentials = { clientToken: 'akab-client-token-xxx', clientSecret: 'c2VjcmV0LWNsaWVudC1zZWNyZXQtdGhhdC1pcy1sb25n=', accessToken: 'akab-access-token-xxx' }
  const base = (): InvalidationBase => ({
    base: 'sftp://origin.example/data/cdn/',
    publicUrl: 'https://media.example.com/vod/',
    onFailure: 'fail',
    provider: { type: 'akamai', host: endpoint, network: 'staging', action: 'invalidate', ...credentials },
  })

  it('posts the URLs to /ccu/v3/invalidate/url/{network}, EdgeGrid-signed over what arrived', async () => {
    answer = { status: 201, body: '{"httpStatus":201,"detail":"Request accepted","estimatedSeconds":5,"purgeId":"e535071c-26b2-11e7-94d7-276f2f54d938","supportId":"17PY1492793544958045-219026624"}', headers: { 'Content-Type': 'application/json' } }
    const { calls, error } = await invalidate(base(), 'purge', ['master.m3u8', 'seg 1.ts'])
    assert.equal(error, undefined)
    const [req] = received as [Received]
    assert.equal(req.method, 'POST')
    assert.equal(req.path, '/ccu/v3/invalidate/url/staging')
    assert.equal(req.headers['content-type'], 'application/json')
    assert.equal(req.body, '{"objects":["https://media.example.com/vod/show/master.m3u8","https://media.example.com/vod/show/seg%201.ts"]}')
    const auth = req.headers['authorization']!
    const [, timestamp, nonce] = /timestamp=([^;]+);nonce=([^;]+);/.exec(auth) ?? []
    assert.equal(timestamp, '20261207T01:02:03+0000')
    assert.match(nonce!, /^[0-9a-f-]{36}$/)
    assert.equal(auth, edgeGridAuthorization({ method: req.method, url: `https://${req.headers['host']}${req.path}`, body: req.body }, credentials, timestamp!, nonce!))
    assert.equal(calls[0]?.status, 201)
    assert.match(calls[0]!.answer, /Request accepted/)
    assert.ok(!JSON.stringify(calls).includes(credentials.clientSecret))
  })

  it('a 403 is ERR_INVALIDATION; a 507 ERR_INVALIDATION_UNAVAILABLE', async () => {
    answer = { status: 403, body: '{"type":"https://problems.purge.akamaiapis.net/-/pep-authn/deny","title":"Not authorized"}' }
    assert.ok(isPublishError((await invalidate(base(), 'purge', ['a.ts'])).error, 'ERR_INVALIDATION'))
    answer = { status: 507, body: '{"title":"Rate limit exceeded"}' }
    assert.ok(isPublishError((await invalidate(base(), 'purge', ['a.ts'])).error, 'ERR_INVALIDATION_UNAVAILABLE'))
  })
})

/** The SigV4 Authorization header for `req` as it arrived, computed here from the AWS documentation. */
function sigV4(req: Received, secret: string): string {
  const auth = req.headers['authorization']!
  const [, credential, signedHeaders] = /Credential=([^,]+), SignedHeaders=([^,]+),/.exec(auth)!
  const [accessKey, date, region, service] = credential!.split('/') as [string, string, string, string]
  const amzDate = req.headers['x-amz-date']!
  const url = new URL(req.path, 'https://x')
  const query = [...url.searchParams].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).sort().join('&')
  const headers = signedHeaders!.split(';').map((name) => `${name}:${String(req.headers[name]).trim().replace(/\s+/g, ' ')}\n`).join('')
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
  const canonical = [req.method, url.pathname, query, headers, signedHeaders, sha256(req.body)].join('\n')
  const scope = `${date}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n')
  const hmac = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text).digest()
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request')
  return `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${createHmac('sha256', key).update(toSign).digest('hex')}`
}
