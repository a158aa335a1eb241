import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { startS3rver, type S3Server } from '../servers/s3-server.js'
import { sha256File, writeLargeFile } from './helpers.js'

// Real networks reset, stall and crawl: a TCP proxy between our server and the storage does that to
// one connection, and the published bytes must still be identical afterwards.
const SIZE = 48 << 20

describe('transfers through a faulty network', () => {
  let root: string
  let origin: HttpOrigin
  let originProxy: FaultProxy
  let s3: S3Server
  let s3Proxy: FaultProxy
  let server: TestServer
  let client: ApubiClient
  let sha256: string

  before(async () => {
    s3 = await startS3rver()
    s3Proxy = await startFaultProxy('127.0.0.1', Number(new URL(s3.endpoint).port))
    server = await startServer({
      env: {
        APUBI_LOG_LEVEL: 'debug',
        APUBI_TIMEOUT_MS: '1500',
        APUBI_MAX_ATTEMPTS: '3',
        APUBI_S3_ENDPOINT: `http://127.0.0.1:${s3Proxy.port}`,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
      },
    })
    client = new ApubiClient(server.url)
    // The origin serves the server's own file root, so the same file is also a file:// source.
    root = server.fileRoot
    await writeLargeFile(join(root, 'big.ts'), SIZE)
    sha256 = await sha256File(join(root, 'big.ts'))
    origin = await startHttpOrigin(root)
    originProxy = await startFaultProxy('127.0.0.1', origin.port)
  })
  after(async () => {
    await server.stop()
    await originProxy.close()
    await origin.close()
    await s3Proxy.close()
    await s3.close()
  })

  const throughProxy = () => `http://127.0.0.1:${originProxy.port}/big.ts`
  const linesOf = (taskId: string) => server.output().split('\n').filter((l) => l.includes(taskId))
  // The server holds its database exclusively while it runs: what it recorded is read from its log.
  const resumedFrom = (taskId: string): number => {
    const line = linesOf(taskId).find((l) => l.includes('"file published"'))
    assert.ok(line, `no "file published" line for ${taskId}`)
    return (JSON.parse(line) as { resumedFrom: number }).resumedFrom
  }

  it('a connection reset mid-download: retried, continued with a Range request, bytes identical', async () => {
    originProxy.inject({ resetAfterDownBytes: 20 << 20 })
    const taskId = await client.loadAsset(throughProxy(), 'Faults/reset.ts')
    assert.equal((await client.waitFor(taskId, 100)).status, 'SUCCESS')
    assert.equal(await sha256File(join(server.dataDir, 'cdn/Faults/reset.ts')), sha256)
    assert.ok(linesOf(taskId).some((l) => l.includes('task will retry') && l.includes('ERR_TRANSFER')), 'the reset was retried')
    assert.ok(resumedFrom(taskId) > 0, 'the second attempt continued the partial file')
    assert.ok(origin.log.some((r) => r.path === 'big.ts' && r.range?.startsWith('bytes=') && r.range !== 'bytes=0-0'), 'a Range request resumed it')
  })

  it('a stalled server: the idle timeout gives up on it, the retry finishes, bytes identical', async () => {
    originProxy.inject({ stallAfterBytes: 8 << 20 })
    const taskId = await client.loadAsset(throughProxy(), 'Faults/stall.ts')
    assert.equal((await client.waitFor(taskId, 100)).status, 'SUCCESS')
    assert.equal(await sha256File(join(server.dataDir, 'cdn/Faults/stall.ts')), sha256)
    assert.ok(linesOf(taskId).some((l) => l.includes('task will retry')), 'the stall ended the first attempt')
  })

  it('a slow link that keeps moving is not a failure', async () => {
    originProxy.inject({ bytesPerSecond: 24 << 20 })
    const taskId = await client.loadAsset(throughProxy(), 'Faults/slow.ts')
    assert.equal((await client.waitFor(taskId, 100)).status, 'SUCCESS')
    assert.equal(await sha256File(join(server.dataDir, 'cdn/Faults/slow.ts')), sha256)
    assert.ok(!linesOf(taskId).some((l) => l.includes('task will retry')), 'no retry was needed')
  })

  it('a reset while uploading to S3: recovered (by the SDK\'s part retry or ours), the object whole', async () => {
    const faultedBefore = s3Proxy.stats.faulted
    s3Proxy.inject({ resetAfterUpBytes: 12 << 20 })
    const taskId = await client.loadAsset(pathToFileURL(join(root, 'big.ts')).href, `s3://${s3.bucket}/faults/big.ts`)
    assert.equal((await client.waitFor(taskId, 100)).status, 'SUCCESS')
    assert.equal(s3Proxy.stats.faulted, faultedBefore + 1, 'a connection of the upload was reset')
    const back = await client.loadAsset(`s3://${s3.bucket}/faults/big.ts`, 'Faults/from-s3.ts')
    assert.equal((await client.waitFor(back, 100)).status, 'SUCCESS')
    assert.equal(await sha256File(join(server.dataDir, 'cdn/Faults/from-s3.ts')), sha256)
  })
})
