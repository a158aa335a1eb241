import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startS3rver, type S3Server } from '../servers/s3-server.js'
import { listFiles, sha256File, writeLargeFile } from './helpers.js'

const LARGE = 64 << 20

describe('publishing through an S3-compatible store (s3rver)', () => {
  let server: TestServer
  let client: ApubiClient
  let s3: S3Server
  let sdk: S3Client
  const url = (key: string) => `s3://${s3.bucket}/${key}`

  before(async () => {
    s3 = await startS3rver()
    // The server finds the store the way an operator points it at one: endpoint setting, AWS variables.
    server = await startServer({
      env: {
        APUBI_MAX_ATTEMPTS: '2',
        APUBI_S3_ENDPOINT: s3.endpoint,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
      },
    })
    client = new ApubiClient(server.url)
    // An independent look at the bucket: the SDK itself, not our backend.
    sdk = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3 })
  })
  after(async () => {
    sdk.destroy()
    await server.stop()
    await s3.close()
  })

  /** Every key below `prefix`, directory markers included. */
  const keysUnder = async (prefix: string): Promise<string[]> => {
    const keys: string[] = []
    for (let token: string | undefined, more = true; more; ) {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }))
      keys.push(...(page.Contents ?? []).map((o) => o.Key!))
      token = page.NextContinuationToken
      more = Boolean(page.IsTruncated && token)
    }
    return keys.sort()
  }
  const objectBytes = async (key: string): Promise<Buffer> => {
    const { Body } = await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    return Buffer.from(await Body!.transformToByteArray())
  }
  const objectSha256 = async (key: string): Promise<string> => {
    const { Body } = await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    const hash = createHash('sha256')
    for await (const chunk of Body as Readable) hash.update(chunk as Buffer)
    return hash.digest('hex')
  }

  it('publishes 64 MiB file:// → s3:// and back s3:// → file://, bytes identical', async () => {
    const source = join(server.fileRoot, 'big.ts')
    await writeLargeFile(source, LARGE)
    let started = Date.now()
    const up = await client.loadAsset(pathToFileURL(source).href, url('vod/big.ts'))
    assert.deepEqual(await client.waitFor(up, 50), { status: 'SUCCESS', destinationAsset: url('vod/big.ts') })
    const upMs = Date.now() - started
    assert.equal(await objectSha256('vod/big.ts'), await sha256File(source))

    started = Date.now()
    const down = await client.loadAsset(url('vod/big.ts'), 'FromS3/')
    assert.deepEqual(await client.waitFor(down, 50), { status: 'SUCCESS', destinationAsset: 'FromS3/big.ts' })
    const downMs = Date.now() - started
    assert.equal(await sha256File(join(server.dataDir, 'cdn/FromS3/big.ts')), await sha256File(source))
    assert.deepEqual(await keysUnder('vod/'), ['vod/big.ts'], 'written in place: no temporary object')
    const rate = (ms: number) => ((LARGE / (1 << 20)) / (ms / 1000)).toFixed(1)
    console.log(`64 MiB task, submit to SUCCESS: up ${upMs} ms (${rate(upMs)} MiB/s), down ${downMs} ms (${rate(downMs)} MiB/s)`)
  })

  it('publishes a directory file:// → s3://…/, copies it back s3:// → file://, then purges every object of the prefix', async () => {
    const packageDir = join(server.fileRoot, 'package')
    const expected: string[] = []
    for (let i = 0; i < 120; i++) {
      const rel = `video/${i % 3}/${i % 4}/seg${String(i).padStart(4, '0')}.ts`
      mkdirSync(join(packageDir, rel, '..'), { recursive: true })
      writeFileSync(join(packageDir, rel), randomBytes(1_000 + i * 997))
      expected.push(rel)
    }
    writeFileSync(join(packageDir, 'master.m3u8'), '#EXTM3U\n')
    expected.push('master.m3u8')
    expected.sort()

    const up = await client.loadAsset(`${pathToFileURL(packageDir).href}/`, url('hls/pkg/'))
    assert.deepEqual(await client.waitFor(up, 50), { status: 'SUCCESS', destinationAsset: url('hls/pkg/') })
    // Exactly the files: publishing leaves no directory marker objects on an object store.
    assert.deepEqual(await keysUnder('hls/pkg/'), expected.map((rel) => `hls/pkg/${rel}`).sort())
    for (const rel of expected) assert.deepEqual(await objectBytes(`hls/pkg/${rel}`), readFileSync(join(packageDir, rel)), rel)

    const down = await client.loadAsset(url('hls/pkg/'), 'FromS3Pkg/')
    assert.equal((await client.waitFor(down, 50)).status, 'SUCCESS')
    const copied = join(server.dataDir, 'cdn/FromS3Pkg')
    assert.deepEqual(await listFiles(copied), expected)
    for (const rel of expected) assert.deepEqual(readFileSync(join(copied, rel)), readFileSync(join(packageDir, rel)), rel)

    const purge = await client.purgeAsset(url('hls/pkg/'))
    assert.equal((await client.waitFor(purge, 50)).status, 'SUCCESS')
    assert.deepEqual(await keysUnder('hls/'), [], 'every object of the prefix is gone')
    assert.deepEqual(await keysUnder('vod/'), ['vod/big.ts'], 'only the purged prefix goes')
  })
})
