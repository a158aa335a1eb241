import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { createS3Backend } from '../../src/backends/s3/index.js'
import { isPublishError } from '../../src/errors.js'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'
import { startS3rver, type S3Server } from '../servers/s3-server.js'
import { eventually, publishedFile, sha256File, writeLargeFile } from './helpers.js'

const SIZE = 96 << 20
const servers: TestServer[] = []
let s3: S3Server | undefined
let proxy: FaultProxy | undefined
after(async () => {
  for (const s of servers.reverse()) await s.stop()
  await proxy?.close()
  await s3?.close()
})

it('an S3 upload interrupted by SIGKILL continues after restart from its stored parts, under the same TaskId, bytes identical', async () => {
  s3 = await startS3rver()
  const store = s3
  // Short leases so the restarted server takes the killed one's task back quickly.
  const env = {
    APUBI_LEASE_MS: '1500',
    APUBI_S3_ENDPOINT: store.endpoint,
    AWS_ACCESS_KEY_ID: store.accessKeyId,
    AWS_SECRET_ACCESS_KEY: store.secretAccessKey,
    AWS_REGION: store.region,
  }
  // The first server uploads through a slow link, so that the kill lands mid-upload however loaded
  // the machine is; the second one talks to the store directly.
  proxy = await startFaultProxy('127.0.0.1', Number(new URL(store.endpoint).port))
  proxy.inject({ bytesPerSecond: 4 << 20, times: 1_000 })
  const first = await startServer({ env: { ...env, APUBI_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` } })
  servers.push(first)
  const source = join(first.fileRoot, 'big.ts')
  await writeLargeFile(source, SIZE)
  const key = 'vod/resume/big.ts'
  const taskId = await new ApubiClient(first.url).loadAsset(pathToFileURL(source).href, `s3://${store.bucket}/${key}`)

  // The test's own view of the upload, through the backend the server uses.
  const s3Options = { endpoint: store.endpoint, region: store.region, forcePathStyle: true, accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey, buckets: {} }
  const never = new AbortController().signal
  const backend = createS3Backend(
    { scheme: 's3', host: store.bucket, port: 0 },
    { hosts: createHostLimiter(4), timeoutMs: 10_000, ssh: { knownHostsFile: '/nonexistent', hostKeyPolicy: 'strict' }, s3: s3Options },
  )
  // Kill once the upload holds some whole parts: the copy is mid-way. s3rver rewrites an object in
  // place, so a read racing the upload's rewrite of its record may be cut off: then look again.
  const stored = await eventually(async () => {
    const bytes = await backend.uploadedSoFar!(key, taskId, never).catch(() => 0)
    return bytes >= 16 << 20 ? bytes : undefined
  }, 60_000, 10).catch(async (e: unknown) => {
    const status = await new ApubiClient(first.url).getTaskStatus(taskId).catch(() => undefined)
    throw new Error(`${(e as Error).message}; the task: ${JSON.stringify(status)}; the server said:\n${first.output().slice(-4000)}`)
  })
  await first.kill()
  const left = await backend.stat(key, never).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(isPublishError(left, 'ERR_NOT_FOUND'), 'the kill came after the upload had completed')
  await backend.close()

  const second = await startServer({ env, dataDir: first.dataDir, fileRoot: first.fileRoot })
  servers.push(second)
  const result = await new ApubiClient(second.url).waitFor(taskId, 100)
  assert.deepEqual(result, { status: 'SUCCESS', destinationAsset: `s3://${store.bucket}/${key}` })

  const sdk = new S3Client({ endpoint: store.endpoint, region: store.region, forcePathStyle: true, credentials: store })
  try {
    const sha256 = await sha256File(source)
    const { Body } = await sdk.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }))
    const hash = createHash('sha256')
    for await (const chunk of Body as Readable) hash.update(chunk as Buffer)
    assert.equal(hash.digest('hex'), sha256)
    // The upload's record is gone with it: only the object is left.
    const listed = await sdk.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: 'vod/resume/' }))
    assert.deepEqual(listed.Contents?.map((o) => o.Key), [key])

    // The second attempt continued the upload rather than sending it again, and says so.
    await second.stop({ keep: true })
    const file = publishedFile(first.dataDir, taskId)
    assert.equal(file.size, SIZE)
    assert.equal(file.sha256, sha256)
    assert.ok(file.resumed_from >= stored, `resumed from byte ${file.resumed_from}, ${stored} were stored at the kill`)
  } finally {
    sdk.destroy()
  }
})
