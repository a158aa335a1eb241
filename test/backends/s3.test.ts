import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, it } from 'node:test'
import { ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { createS3Backend, openS3Backend, type S3BackendOptions } from '../../src/backends/s3/index.js'
import { codeFor } from '../../src/backends/s3/errors.js'
import type { Backend, BackendContext, Endpoint, S3Options } from '../../src/backends/types.js'
import { PublishError, type Code } from '../../src/errors.js'
import { startFaultProxy } from '../servers/fault-proxy.js'
import { startS3rver, type S3Server } from '../servers/s3-server.js'
import { makeTestCertificates } from '../servers/tls.js'
import { startUnacceptingListener } from '../servers/unaccepting-listener.js'
import { backendConformance, sha256, text } from './conformance.js'

const MiB = 1 << 20
const WRONG_SECRET = 'Wrong-Secret-4711'

/** The S3 settings that reach `server`, path-style, with its keys unless `keys` says otherwise. */
function s3Options(server: S3Server, keys: { accessKeyId: string; secretAccessKey: string } = server): S3Options {
  return { endpoint: server.endpoint, region: server.region, forcePathStyle: true, accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey, buckets: {} }
}

backendConformance('s3 (s3rver)', async (context) => {
  const server = await startS3rver()
  const endpoint: Endpoint = { scheme: 's3', host: server.bucket, port: 0 }
  const backend = createS3Backend(endpoint, { ...context, s3: s3Options(server) })
  return {
    backend,
    root: 'suite',
    network: true,
    secret: server.secretAccessKey,
    // s3rver checks the key id but not V4 signatures: a key it does not know is what it refuses.
    wrongPassword: () => ({
      backend: createS3Backend(endpoint, { ...context, s3: s3Options(server, { accessKeyId: 'NOT-A-KEY', secretAccessKey: WRONG_SECRET }) }),
      password: WRONG_SECRET,
    }),
    close: async () => {
      await backend.close()
      await server.close()
    },
  }
})

describe('s3 backend (s3rver): what object storage adds', () => {
  let server: S3Server
  let context: BackendContext
  let backend: Backend
  const never = new AbortController().signal
  const open = (options: S3BackendOptions = {}, host = server.bucket, s3 = s3Options(server)): Backend =>
    openS3Backend({ scheme: 's3', host, port: 0 }, { ...context, s3 }, options)

  before(async () => {
    server = await startS3rver()
    context = { hosts: createHostLimiter(4), timeoutMs: 10_000, ssh: { knownHostsFile: '/nonexistent', hostKeyPolicy: 'strict' }, s3: s3Options(server) }
    backend = open()
  })
  after(async () => {
    await backend.close()
    await server.close()
  })

  it('a 40 MiB upload in 5 MiB parts is invisible until it completes, then whole', async () => {
    const multipart = open({ partSizeBytes: 5 * MiB, queueSize: 2 })
    const gate = deferred()
    const halfway = deferred()
    const writing = multipart.write('multipart/big.bin', generated(40 * MiB, 20 * MiB, halfway.resolve, gate.promise), never)
    await halfway.promise
    await sleep(200) // the parts of the first half reach the server
    await rejectsWith(backend.stat('multipart/big.bin', never), 'ERR_NOT_FOUND')
    gate.resolve()
    await writing
    assert.deepEqual(await backend.stat('multipart/big.bin', never), { path: 'multipart/big.bin', type: 'file', size: 40 * MiB })
    assert.equal(await sha256(await backend.read('multipart/big.bin', never)), await sha256(generated(40 * MiB)))
    assert.ok(server.events.includes('ObjectCreated:Post multipart/big.bin'), `not a multipart upload: ${server.events.join(', ')}`)
    await multipart.close()
  })

  it('an upload aborted after some parts leaves no object', async () => {
    const multipart = open({ partSizeBytes: 5 * MiB, queueSize: 2 })
    const abort = new AbortController()
    const halfway = deferred()
    const writing = multipart.write('aborted/big.bin', generated(40 * MiB, 20 * MiB, halfway.resolve, new Promise(() => {})), abort.signal)
    await halfway.promise
    await sleep(200)
    abort.abort()
    await rejectsWith(writing, 'ERR_SHUTDOWN')
    await sleep(500) // requests the abort cut off would have landed by now
    await rejectsWith(backend.stat('aborted/big.bin', never), 'ERR_NOT_FOUND')
    assert.deepEqual(server.events.filter((e) => e.includes('aborted/')), [])
    await multipart.close()
  })

  /** Starts a tagged 40 MiB upload in 5 MiB parts, aborts it once whole parts are stored; their bytes. */
  const interruptedUpload = async (multipart: Backend, path: string, tag: string): Promise<number> => {
    const abort = new AbortController()
    const halfway = deferred()
    const writing = multipart.write(path, generated(40 * MiB, 20 * MiB, halfway.resolve, new Promise(() => {})), abort.signal, { uploadTag: tag, keepPartsOnError: true })
    await halfway.promise
    let stored = 0
    for (let tries = 0; stored < 10 * MiB && tries < 100; tries++) {
      await sleep(50)
      // s3rver rewrites the upload's record in place: a read racing a rewrite may be cut off.
      stored = await multipart.uploadedSoFar!(path, tag, never).catch(() => 0)
    }
    abort.abort()
    await rejectsWith(writing, 'ERR_SHUTDOWN')
    return stored
  }

  it('an interrupted tagged upload keeps its whole parts, and a write resumed from them completes the object byte-identical', async () => {
    const multipart = open({ partSizeBytes: 5 * MiB, queueSize: 2 })
    const tag = 'resume-task-1'
    await interruptedUpload(multipart, 'resume/big.bin', tag)
    const stored = await multipart.uploadedSoFar!('resume/big.bin', tag, never)
    assert.ok(stored >= 10 * MiB && stored % (5 * MiB) === 0, `stored ${stored}`)
    await rejectsWith(backend.stat('resume/big.bin', never), 'ERR_NOT_FOUND')
    await multipart.write('resume/big.bin', skip(generated(40 * MiB), stored), never, { uploadTag: tag, resumeFrom: stored, keepPartsOnError: true })
    assert.equal(await sha256(await backend.read('resume/big.bin', never)), await sha256(generated(40 * MiB)))
    // The upload's record went with it: only the object is left.
    assert.deepEqual((await backend.list('resume', never)).map((e) => e.path), ['resume/big.bin'])
    assert.equal(await multipart.uploadedSoFar!('resume/big.bin', tag, never), 0)
    await multipart.close()
  })

  it('a write resumed from bytes no stored upload holds fails with ERR_TRANSFER, and the next write from 0 starts afresh', async () => {
    const multipart = open({ partSizeBytes: 5 * MiB, queueSize: 2 })
    const tag = 'resume-task-2'
    await interruptedUpload(multipart, 'mismatch/big.bin', tag)
    // What the record says once the interrupted upload settled: a part in flight at the abort may still have landed.
    const stored = await multipart.uploadedSoFar!('mismatch/big.bin', tag, never)
    const wrong = stored + 5 * MiB
    await rejectsWith(multipart.write('mismatch/big.bin', skip(generated(40 * MiB), wrong), never, { uploadTag: tag, resumeFrom: wrong }), 'ERR_TRANSFER')
    assert.equal(await multipart.uploadedSoFar!('mismatch/big.bin', tag, never), 0)
    await multipart.write('mismatch/big.bin', generated(40 * MiB), never, { uploadTag: tag, resumeFrom: 0 })
    assert.equal(await sha256(await backend.read('mismatch/big.bin', never)), await sha256(generated(40 * MiB)))
    assert.deepEqual((await backend.list('mismatch', never)).map((e) => e.path), ['mismatch/big.bin'])
    await multipart.close()
  })

  it('an untagged upload failing mid-way keeps nothing to resume', async () => {
    const multipart = open({ partSizeBytes: 5 * MiB, queueSize: 2 })
    const abort = new AbortController()
    const halfway = deferred()
    const writing = multipart.write('untagged/big.bin', generated(40 * MiB, 20 * MiB, halfway.resolve, new Promise(() => {})), abort.signal, { keepPartsOnError: true })
    await halfway.promise
    abort.abort()
    await rejectsWith(writing, 'ERR_SHUTDOWN')
    assert.equal(await multipart.uploadedSoFar!('untagged/big.bin', 'any', never), 0)
    await rejectsWith(backend.stat('untagged', never), 'ERR_NOT_FOUND')
    await multipart.close()
  })

  it('a tagged upload aborted for good (a cancel, an overall timeout) keeps no part and no record, even when asked to keep them', async () => {
    const multipart = open({ partSizeBytes: 5 * MiB, queueSize: 2 })
    const tag = 'cancelled-task'
    const abort = new AbortController()
    const halfway = deferred()
    const writing = multipart.write('cancelled/big.bin', generated(40 * MiB, 20 * MiB, halfway.resolve, new Promise(() => {})), abort.signal, { uploadTag: tag, keepPartsOnError: true })
    await halfway.promise
    for (let tries = 0; tries < 100 && (await multipart.uploadedSoFar!('cancelled/big.bin', tag, never).catch(() => 0)) < 5 * MiB; tries++) await sleep(50)
    abort.abort(new PublishError('ERR_CANCELLED', 'cancelled by operator'))
    await rejectsWith(writing, 'ERR_SHUTDOWN')
    assert.equal(await multipart.uploadedSoFar!('cancelled/big.bin', tag, never), 0)
    await rejectsWith(backend.stat('cancelled', never), 'ERR_NOT_FOUND')
    await multipart.close()
  })

  it('read from an offset returns the tail; at the end, nothing', async () => {
    await backend.write('offset/file.txt', Readable.from([Buffer.from('0123456789')]), never)
    assert.equal(await text(await backend.read('offset/file.txt', never, 4)), '456789')
    assert.equal(await text(await backend.read('offset/file.txt', never, 10)), '')
  })

  it('list pages through a directory of 1,200 entries; removeTree deletes 2,500 objects (three batches) and nothing beside it', async () => {
    const client = sdkClient(server)
    const name = (i: number) => `f${String(i).padStart(4, '0')}.ts`
    // Every folder holds objects of its own: s3rver (not S3) leaves out a common prefix that has only deeper keys.
    const keys = Array.from({ length: 2500 }, (_, i) => (i < 1200 ? `tree/flat/${name(i)}` : `tree/d${i % 5}/${i % 2 ? `s${i % 3}/` : ''}${name(i)}`))
    await forEachLimited([...keys, 'tree-beside/keep.ts', 'treekeep.ts'], 32, (Key) => client.send(new PutObjectCommand({ Bucket: server.bucket, Key, Body: Key })))
    await backend.mkdir('tree/empty', never)
    assert.deepEqual((await backend.list('tree/flat', never)).map((e) => e.path).sort(), keys.slice(0, 1200).sort())
    assert.deepEqual((await backend.list('tree', never)).map((e) => `${e.type} ${e.path}`).sort(), ['d0', 'd1', 'd2', 'd3', 'd4', 'empty', 'flat'].map((d) => `directory tree/${d}`))
    const started = Date.now()
    assert.ok(backend.removeTree)
    await backend.removeTree('tree', never)
    console.log(`removeTree of 2,501 keys: ${Date.now() - started} ms`)
    await rejectsWith(backend.stat('tree', never), 'ERR_NOT_FOUND')
    const left = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'tree' }))
    assert.deepEqual(left.Contents?.map((o) => o.Key).sort(), ['tree-beside/keep.ts', 'treekeep.ts'])
    await backend.removeTree('tree', never) // nothing there: no error
    client.destroy()
  })

  it('a missing bucket is ERR_NOT_FOUND naming the bucket, for every operation', async () => {
    const missing = open({}, 'apubi-no-such-bucket')
    const named = (e: unknown): boolean => e instanceof PublishError && e.code === 'ERR_NOT_FOUND' && /bucket apubi-no-such-bucket does not exist/.test(e.message)
    await assert.rejects(missing.stat('x/y.ts', never), named)
    await assert.rejects(missing.stat('.', never), named)
    await assert.rejects(missing.list('x', never), named)
    await assert.rejects(missing.read('x/y.ts', never), named)
    await assert.rejects(missing.write('x/y.ts', Readable.from([Buffer.from('data')]), never), named)
    await missing.close()
  })

  it('a store nobody answers for is ERR_UNREACHABLE', async () => {
    const nobody = open({}, server.bucket, { ...s3Options(server), endpoint: 'http://127.0.0.1:1' })
    await rejectsWith(nobody.stat('x.ts', never), 'ERR_UNREACHABLE')
    await nobody.close()
  })

  it('a store that never accepts the connection is ERR_UNREACHABLE, saying it was the connect timeout', async (t) => {
    const { port, close } = await startUnacceptingListener()
    t.after(close)
    const silent = openS3Backend({ scheme: 's3', host: server.bucket, port: 0 }, { ...context, timeoutMs: 300, s3: { ...s3Options(server), endpoint: `http://127.0.0.1:${port}` } }, {})
    await rejectsWith(silent.stat('x.ts', never), 'ERR_UNREACHABLE', /did not establish a connection/)
    await silent.close()
  })

  it('an abort stops a request the store never answers', { timeout: 30_000 }, async () => {
    const proxy = await startFaultProxy('127.0.0.1', Number(new URL(server.endpoint).port))
    proxy.inject({ stallAfterBytes: 0, times: 1 })
    // Nothing but the abort can end the request: the idle timeout is far beyond the test's.
    const stalled = openS3Backend({ scheme: 's3', host: server.bucket, port: 0 }, { ...context, timeoutMs: 600_000, s3: { ...s3Options(server), endpoint: `http://127.0.0.1:${proxy.port}` } }, {})
    const abort = new AbortController()
    setTimeout(() => abort.abort(), 200)
    await rejectsWith(stalled.stat('x.ts', abort.signal), 'ERR_SHUTDOWN')
    assert.equal(proxy.stats.faulted, 1)
    await stalled.close()
    await proxy.close()
  })

  it('a wrong secret key is ERR_AUTH, and the message does not carry it', async (t) => {
    const wrong = open({}, server.bucket, s3Options(server, { accessKeyId: server.accessKeyId, secretAccessKey: WRONG_SECRET }))
    try {
      const outcome = await wrong.stat('.', never).then(
        () => undefined,
        (e: unknown) => e,
      )
      if (outcome === undefined) {
        console.warn('\n*** SKIPPED s3 wrong secret: s3rver does not verify V4 signatures (an unknown key id is refused: see the conformance suite) ***\n')
        return t.skip('s3rver does not verify V4 signatures')
      }
      assert.ok(outcome instanceof PublishError && outcome.code === 'ERR_AUTH', String(outcome))
      assert.doesNotMatch(outcome.message, new RegExp(WRONG_SECRET))
    } finally {
      await wrong.close()
    }
  })

  it("hash md5 of a one-part upload is the file's MD5; sha256 is unknown without a stored checksum", async () => {
    const data = randomBytes(3 * MiB + 17)
    await backend.write('hash/file.bin', Readable.from([data]), never)
    assert.equal(await backend.hash?.('hash/file.bin', 'md5', never), createHash('md5').update(data).digest('hex'))
    assert.equal(await backend.hash?.('hash/file.bin', 'sha256', never), undefined)
    await rejectsWith(backend.hash!('hash/missing.bin', 'md5', never), 'ERR_NOT_FOUND')
  })

  it('a write with append is refused with a clear error, as features.append is false', async () => {
    assert.equal(backend.features.append, false)
    await assert.rejects(backend.write('append/file.bin', Readable.from([Buffer.from('x')]), never, { append: true }), (e: unknown) => {
      assert.ok(e instanceof PublishError && e.code === 'ERR_INTERNAL', String(e))
      assert.match(e.message, /append/)
      return true
    })
  })

  it('over HTTPS, the configured CA is trusted besides the system ones, and a store it does not vouch for is ERR_AUTH', async () => {
    const certificates = makeTestCertificates()
    const tls = await startS3rver({ tls: certificates })
    const host = { scheme: 's3', host: tls.bucket, port: 0 } as const
    const trusting = createS3Backend(host, { ...context, tlsCa: certificates.ca, s3: s3Options(tls) })
    const untrusting = createS3Backend(host, { ...context, s3: s3Options(tls) })
    try {
      await trusting.write('tls/file.txt', Readable.from([Buffer.from('over tls')]), never)
      assert.equal(await text(await trusting.read('tls/file.txt', never)), 'over tls')
      await rejectsWith(untrusting.stat('tls/file.txt', never), 'ERR_AUTH')
    } finally {
      await trusting.close()
      await untrusting.close()
      await tls.close()
      certificates.remove()
    }
  })
})

describe('s3 error codes', () => {
  const service = (name: string, httpStatusCode: number) => new S3ServiceException({ name, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode }, message: name })
  const errno = (code: string) => Object.assign(new Error(code), { code })
  const cases: Array<[string, unknown, Code]> = [
    ['NoSuchKey', service('NoSuchKey', 404), 'ERR_NOT_FOUND'],
    ['a HEAD 404', service('NotFound', 404), 'ERR_NOT_FOUND'],
    ['NoSuchBucket', service('NoSuchBucket', 404), 'ERR_NOT_FOUND'],
    ['InvalidAccessKeyId', service('InvalidAccessKeyId', 403), 'ERR_AUTH'],
    ['SignatureDoesNotMatch', service('SignatureDoesNotMatch', 403), 'ERR_AUTH'],
    ['AccessDenied', service('AccessDenied', 403), 'ERR_PERMISSION'],
    ['a bodiless 403', service('UnknownError', 403), 'ERR_PERMISSION'],
    ['SlowDown', service('SlowDown', 503), 'ERR_TRANSFER'],
    ['InternalError', service('InternalError', 500), 'ERR_TRANSFER'],
    ['any 5xx', service('BadGateway', 502), 'ERR_TRANSFER'],
    ['a timeout', Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }), 'ERR_TRANSFER'],
    ['ECONNREFUSED', errno('ECONNREFUSED'), 'ERR_UNREACHABLE'],
    ['ENOTFOUND', errno('ENOTFOUND'), 'ERR_UNREACHABLE'],
    ['ECONNRESET', errno('ECONNRESET'), 'ERR_TRANSFER'],
    ['an unknown certificate', errno('SELF_SIGNED_CERT_IN_CHAIN'), 'ERR_AUTH'],
    ['anything else', service('InvalidArgument', 400), 'ERR_INTERNAL'],
  ]
  for (const [name, error, code] of cases) {
    it(`${name} → ${code}`, () => assert.equal(codeFor(error), code))
  }
})

/** Promise.withResolvers, which Node 20 lacks. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {}
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

function sdkClient(server: S3Server): S3Client {
  return new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: server, requestChecksumCalculation: 'WHEN_REQUIRED' })
}

async function rejectsWith(promise: Promise<unknown>, code: Code, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof PublishError, `not a PublishError: ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (message) assert.match(e.message, message)
    return true
  })
}

/** `size` deterministic bytes; with `pauseAt`, calls `reached` there and waits for `resume`. */
function generated(size: number, pauseAt = -1, reached?: () => void, resume?: Promise<void>): Readable {
  const block = createHash('sha512').update('apubi').digest()
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < size; offset += MiB) {
        if (offset === pauseAt) {
          reached?.()
          await resume
        }
        const chunk = Buffer.alloc(Math.min(MiB, size - offset), block)
        chunk.writeUInt32BE(offset / MiB, 0)
        yield chunk
      }
    })(),
    { objectMode: false },
  )
}

/** `stream` without its first `count` bytes. */
function skip(stream: Readable, count: number): Readable {
  return Readable.from(
    (async function* () {
      let left = count
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const dropped = Math.min(left, chunk.length)
        left -= dropped
        if (dropped < chunk.length) yield chunk.subarray(dropped)
      }
    })(),
    { objectMode: false },
  )
}

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: limit }, lane))
}
