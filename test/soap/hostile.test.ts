// The hostile-input corpus (test/hostile/manifest.json) against the real server: every request gets
// its documented answer, nothing makes the server fail internally or stop answering, and its memory
// stays bounded while the corpus runs. The format of the manifest is in test/hostile/README.md.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { deflateSync, gzipSync } from 'node:zlib'
import { ApubiClient } from '../../src/client/index.js'
import { eventually } from '../e2e/helpers.js'
import { exchange, parseResponses, type Answer, type Pace, type Response } from '../hostile/exchange.js'
import { generators, type Generated } from '../hostile/generators.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'

interface Expect {
  /** null: the connection is closed without any answer. */
  readonly status?: number | null
  readonly faultcode?: string
  readonly faultstring?: string
  /** A substring of the fault's detail message. */
  readonly message?: string
  readonly contains?: string
  readonly excludes?: string
  readonly absentHeader?: string
  readonly bodiless?: boolean
  /** The server closes the connection (after its answer, if any). */
  readonly closed?: boolean
  /** Pipelined requests: one expectation per answer, in order. */
  readonly responses?: readonly Expect[]
}

interface Entry {
  readonly file?: string
  readonly name?: string
  readonly about: string
  readonly generate?: { readonly name: string } & Record<string, string | number>
  readonly raw?: boolean
  readonly method?: string
  readonly path?: string
  readonly headers?: Record<string, string | null>
  readonly gzip?: boolean
  readonly deflate?: boolean
  readonly chunked?: boolean
  readonly server?: 'short-timeouts'
  readonly pace?: Pace
  readonly expect: Expect
}

const corpus = new URL('../hostile/', import.meta.url).pathname
const manifest = JSON.parse(readFileSync(join(corpus, 'manifest.json'), 'utf8')) as {
  defaults: { method: string; path: string; headers: Record<string, string> }
  requests: Entry[]
}
const idOf = (entry: Entry) => entry.file ?? entry.name ?? assert.fail('an entry without file or name')

/** Peak resident memory the server may reach while the whole corpus runs, MB (VmHWM of its process). */
const PEAK_RSS_LIMIT_MB = 250
/** The second server's limits, short so that slow clients are cut off within the test. */
const SHORT = { headersMs: 1_000, requestMs: 2_000, maxConnections: 4 }

/** The request bytes of an entry, produced as they are sent. */
function* requestOf(entry: Entry, port: number): Generator<Buffer> {
  if (entry.raw) {
    yield readFileSync(join(corpus, entry.file!))
    return
  }
  let body: Generated
  if (entry.generate) {
    const { name, ...parameters } = entry.generate
    body = (generators[name] ?? assert.fail(`no generator ${name}`))(parameters)
  } else {
    const bytes = readFileSync(join(corpus, entry.file!))
    body = { length: bytes.length, chunks: () => [bytes] }
  }
  const headers: Record<string, string | null> = { ...manifest.defaults.headers, ...entry.headers }
  if (entry.gzip || entry.deflate) {
    const plain = Buffer.concat([...body.chunks()])
    const encoded = entry.gzip ? gzipSync(plain) : deflateSync(plain)
    body = { length: encoded.length, chunks: () => [encoded] }
    headers['Content-Encoding'] ??= entry.gzip ? 'gzip' : 'deflate'
  }
  if (entry.chunked) headers['Transfer-Encoding'] = 'chunked'
  else headers['Content-Length'] = String(body.length)
  const lines = Object.entries(headers).flatMap(([name, value]) => (value === null ? [] : [`${name}: ${value}\r\n`]))
  yield Buffer.from(`${entry.method ?? manifest.defaults.method} ${entry.path ?? manifest.defaults.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${lines.join('')}\r\n`)
  for (const chunk of body.chunks()) {
    if (!entry.chunked) yield chunk
    else if (chunk.length > 0) yield Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
  }
  if (entry.chunked) yield Buffer.from('0\r\n\r\n')
}

const unescape = (text: string) =>
  text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')

function checkResponse(response: Response | undefined, expect: Expect): void {
  assert.ok(response, 'an answer')
  assert.equal(response.status, expect.status)
  const text = response.body.toString('utf8')
  if (expect.faultcode !== undefined) {
    assert.equal(response.headers['content-type'], 'text/xml; charset=utf-8')
    assert.equal(/<faultcode>([^<]*)<\/faultcode>/.exec(text)?.[1], expect.faultcode, text)
    if (expect.faultstring !== undefined) assert.equal(unescape(/<faultstring>([^<]*)<\/faultstring>/.exec(text)?.[1] ?? ''), expect.faultstring)
    if (expect.message !== undefined) {
      const message = unescape(/<message>([^<]*)<\/message>/.exec(text)?.[1] ?? '')
      assert.ok(message.includes(expect.message), `fault message ${JSON.stringify(message.slice(0, 300))} should contain ${JSON.stringify(expect.message)}`)
    }
  }
  if (expect.contains !== undefined) assert.ok(text.includes(expect.contains), `answer should contain ${expect.contains}: ${text.slice(0, 300)}`)
  if (expect.excludes !== undefined) assert.ok(!text.includes(expect.excludes), `answer must not contain ${expect.excludes} unescaped`)
  if (expect.absentHeader !== undefined) assert.equal(response.headers[expect.absentHeader], undefined)
  if (expect.bodiless) assert.equal(response.body.length, 0)
}

function checkAnswer(answer: Answer, expect: Expect): void {
  if (expect.status === null) {
    assert.deepEqual(answer.responses, [], 'no answer at all')
    assert.equal(answer.leftover.length, 0, 'no bytes at all')
  } else {
    const expected = expect.responses ?? [expect]
    assert.equal(answer.responses.length, expected.length, `answers: ${answer.responses.map((r) => r.status).join(', ')}`)
    expected.forEach((e, i) => checkResponse(answer.responses[i], e))
  }
  if (expect.closed) assert.ok(answer.closedByServer, 'the server closes the connection')
}

/** The peak resident set of a process so far (VmHWM), MB of 10^6 bytes, as bench/child.ts reads it. */
function peakRssMb(pid: number): number {
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return (Number(kib ?? assert.fail('no VmHWM')) * 1024) / 1e6
}

/** Established TCP connections whose local end is `port` on this host: the server's side of each. */
function serverSideConnections(port: number): number {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(local) && fields[3] === '01').length
}

/** A connection that got an answer to a GET and stays open (keep-alive); undefined when the server closed it unanswered. */
function openAnswered(port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let received = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (parseResponses(received).responses.length > 0) resolve(socket)
    })
    socket.on('close', () => resolve(undefined))
    socket.on('connect', () => socket.write('GET /apubi?wsdl HTTP/1.1\r\nHost: apubi\r\n\r\n'))
  })
}

describe('the hostile-input corpus', () => {
  let server: TestServer
  let short: TestServer

  before(async () => {
    server = await startServer()
    short = await startServer({
      env: {
        APUBI_HEADERS_TIMEOUT_MS: String(SHORT.headersMs),
        APUBI_REQUEST_TIMEOUT_MS: String(SHORT.requestMs),
        APUBI_MAX_CONNECTIONS: String(SHORT.maxConnections),
        // Long, so that the connections the cap test holds stay open on their own.
        APUBI_KEEP_ALIVE_TIMEOUT_MS: '60000',
      },
    })
  })
  after(async () => {
    await server?.stop()
    await short?.stop()
  })

  it('holds at least 150 requests, every stored file listed once and under 200 KB', () => {
    assert.ok(manifest.requests.length >= 150, `${manifest.requests.length} requests`)
    const ids = manifest.requests.map(idOf)
    assert.equal(new Set(ids).size, ids.length, 'no request listed twice')
    const files = (function list(dir: string): string[] {
      return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? list(join(dir, d.name)) : [relative(corpus, join(dir, d.name))]))
    })(corpus).filter((f) => f.includes('/'))
    assert.deepEqual(files.sort(), manifest.requests.flatMap((e) => (e.file ? [e.file] : [])).sort())
    for (const file of files) assert.ok(statSync(join(corpus, file)).size < 200_000, `${file} is over 200 KB`)
  })

  for (const entry of manifest.requests) {
    it(`${idOf(entry)}: ${entry.about}`, async () => {
      const target = entry.server === 'short-timeouts' ? short : server
      const method = entry.method ?? manifest.defaults.method
      const answer = await exchange({
        port: target.port,
        request: requestOf(entry, target.port),
        ...(entry.pace && { pace: entry.pace }),
        responses: entry.expect.responses?.length ?? 1,
        untilClosed: entry.expect.closed === true || entry.expect.status === null,
        bodiless: method === 'HEAD',
        timeoutMs: 30_000,
      })
      checkAnswer(answer, entry.expect)
    })
  }

  it('still publishes and answers after the corpus: a PurgeAsset reaches SUCCESS', async () => {
    const client = new ApubiClient(server.url)
    const taskId = await client.purgeAsset('after/the/corpus.ts')
    assert.equal((await client.waitFor(taskId, 50)).status, 'SUCCESS')
  })

  it('logged no internal error for any of them', () => {
    // pino levels: 50 error, 60 fatal.
    const failures = server.output().split('\n').filter((line) => /"level":(50|60)/.test(line))
    assert.deepEqual(failures, [])
  })

  it(`kept the server's peak memory under ${PEAK_RSS_LIMIT_MB} MB`, (t) => {
    // Idle, the server (node with tsx) peaks near 120 MB. The corpus holds at most one request at a
    // time, each at most APUBI_MAX_BODY_BYTES (1 MiB) as received and as decoded: a 1 GB gzip bomb,
    // 100,000-deep nesting or a 50 MB body must not show up here.
    const peak = peakRssMb(server.process.pid!)
    t.diagnostic(`peak RSS of the server: ${peak.toFixed(0)} MB`)
    assert.ok(peak < PEAK_RSS_LIMIT_MB, `peak RSS ${peak.toFixed(0)} MB`)
  })

  it(`closes connections beyond APUBI_MAX_CONNECTIONS (${SHORT.maxConnections}) as they arrive, and takes new ones once others end`, async () => {
    const held: Socket[] = []
    try {
      // The start-up probe of the test helper may hold one connection too: count the server's side.
      for (let socket = await openAnswered(short.port); socket; socket = await openAnswered(short.port)) {
        held.push(socket)
        assert.ok(held.length <= SHORT.maxConnections)
      }
      assert.equal(serverSideConnections(short.port), SHORT.maxConnections)
      held.pop()!.destroy()
      held.push(await eventually(() => openAnswered(short.port)))
      assert.match(short.output(), /connections refused: APUBI_MAX_CONNECTIONS reached/)
    } finally {
      for (const socket of held) socket.destroy()
    }
  })
})
