// Mirrored origins: one destination base published to two real origins of different kinds, an
// OpenSSH SFTP server and an S3-compatible store (s3rver, behind the fault proxy). With the store
// down during the publish, the task waits to retry, the SFTP copy already done and checked; the
// retry redoes only the store and the task ends SUCCESS with identical bytes on both. With both up,
// an HTTP source is read once for both. PurgeAsset removes the asset from both.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { taskWhen } from '../admin/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { startS3rver, type S3Server } from '../servers/s3-server.js'
import { SSHD_MISSING, sshdInstalled, startSshd, type SftpServer } from '../servers/sftp-server.js'
import { writeLargeFile } from './helpers.js'

const installed = sshdInstalled()
if (!installed) console.warn(`\n*** SKIPPED mirrored origins (SFTP + S3): ${SSHD_MISSING} ***\n`)

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('mirrored origins: SFTP and S3-compatible', { skip: installed ? false : SSHD_MISSING }, () => {
  let server: TestServer
  let client: ApubiClient
  let sftp: SftpServer
  let s3: S3Server
  let proxy: FaultProxy
  let http: HttpOrigin
  let sdk: S3Client
  let secrets: string
  let sources: string

  before(async () => {
    // A folder the SFTP user can reach: when we are root, sshd logs in as another user.
    secrets = mkdtempSync(join(tmpdir(), 'apubi-mirrors-'))
    chmodSync(secrets, 0o711)
    mkdirSync(join(secrets, 'root'))
    const started = await startSshd(join(secrets, 'root'))
    assert.ok(started, SSHD_MISSING)
    sftp = started
    s3 = await startS3rver()
    proxy = await startFaultProxy('127.0.0.1', Number(new URL(s3.endpoint).port))
    sdk = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3 })
    sources = mkdtempSync(join(tmpdir(), 'apubi-mirrors-http-'))
    http = await startHttpOrigin(sources)
    writeFileSync(join(secrets, 'known_hosts'), `${sftp.knownHostsLine}\n`)
    writeFileSync(join(secrets, 'id_ed25519'), sftp.privateKey, { mode: 0o600 })
    const base = sftp.url('cdn/')
    writeFileSync(
      join(secrets, 'apubi.json'),
      JSON.stringify({
        credentials: [{ url: `sftp://${sftp.host}:${sftp.port}`, user: sftp.user, privateKeyFile: join(secrets, 'id_ed25519') }],
        mirrors: [{ base, origins: [base, `s3://${s3.bucket}/cdn/`] }],
      }),
    )
    server = await startServer({
      env: {
        APUBI_CONFIG: join(secrets, 'apubi.json'),
        APUBI_CDN_BASE: base,
        APUBI_SSH_KNOWN_HOSTS: join(secrets, 'known_hosts'),
        APUBI_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
        APUBI_MAX_ATTEMPTS: '3',
        // Time enough for the test to bring the store back before the retry.
        APUBI_RETRY_BASE_MS: '3000',
        APUBI_TIMEOUT_MS: '5000',
      },
    })
    client = new ApubiClient(server.url)
  })
  after(async () => {
    sdk?.destroy()
    await server?.stop()
    await proxy?.close()
    await s3?.close()
    await http?.close()
    await sftp?.close()
    for (const dir of [secrets, sources]) if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const onSftp = (path: string) => join(sftp.root, 'cdn', path)
  const objectSha256 = async (key: string): Promise<string> => {
    const { Body } = await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    return sha256(Buffer.from(await Body!.transformToByteArray()))
  }
  const keysUnder = async (prefix: string): Promise<string[]> => ((await sdk.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort()

  it('retries only the origin that was down, and ends SUCCESS with identical bytes on both', async () => {
    const show = join(server.fileRoot, 'show')
    mkdirSync(join(show, 'video'), { recursive: true })
    await writeLargeFile(join(show, 'video', 'segment.ts'), 6 << 20)
    writeFileSync(join(show, 'master.m3u8'), '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nvideo/index.m3u8\n')
    writeFileSync(join(show, 'video', 'index.m3u8'), '#EXTM3U\n#EXTINF:6,\nsegment.ts\n#EXT-X-ENDLIST\n')
    const files = ['master.m3u8', 'video/index.m3u8', 'video/segment.ts']

    // The store is down: every connection to it is reset.
    proxy.inject({ resetAfterUpBytes: 0, times: 1_000_000 })
    const id = await client.loadAsset(`${pathToFileURL(show).href}/`, 'show/')
    const waiting = await taskWhen(server, id, (t) => t.state === 'retry_wait' || t.state === 'failed')
    assert.equal(waiting.state, 'retry_wait', JSON.stringify(waiting.lastError))
    assert.match(waiting.lastError.message, new RegExp(`1 of 2 origins done; origin s3://${s3.bucket}/cdn/: ERR_`))
    assert.doesNotMatch(waiting.lastError.message, /origin sftp:/)
    assert.deepEqual(waiting.origins.map((o: any) => [o.origin, o.state]), [[sftp.url('cdn/'), 'done'], [`s3://${s3.bucket}/cdn/`, 'pending']])
    for (const file of files) assert.equal(sha256(readFileSync(onSftp(`show/${file}`))), sha256(readFileSync(join(show, file))), file)
    const sftpWritten = files.map((file) => statSync(onSftp(`show/${file}`)).mtimeMs)

    proxy.inject({ times: 0 }) // the store is back
    const done = await taskWhen(server, id, (t) => t.state === 'succeeded' || t.state === 'failed')
    assert.equal(done.state, 'succeeded', JSON.stringify(done.lastError))
    assert.equal(done.attemptHistory.length, 1)
    assert.deepEqual(done.origins.map((o: any) => [o.state, o.progress.filesDone]), [['done', 3], ['done', 3]])
    // Both origins have every file, byte for byte; the SFTP copies are the first attempt's, untouched.
    for (const file of files) {
      const expected = sha256(readFileSync(join(show, file)))
      assert.equal(sha256(readFileSync(onSftp(`show/${file}`))), expected, `sftp ${file}`)
      assert.equal(await objectSha256(`cdn/show/${file}`), expected, `s3 ${file}`)
    }
    assert.deepEqual(files.map((file) => statSync(onSftp(`show/${file}`)).mtimeMs), sftpWritten)
    assert.deepEqual(await keysUnder('cdn/show/'), files.map((f) => `cdn/show/${f}`).sort())
    // `apubi task` lists each origin with its outcome.
    const cli = new URL('../../src/cli/index.ts', import.meta.url).pathname
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'task', id, '--url', server.url])
    const origins = stdout.slice(stdout.indexOf('Origins:')).split('\n').slice(1, 3)
    assert.match(origins[0]!, new RegExp(`^  ${sftp.url('cdn/').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  done  100% of 6\\.\\d MiB, 3/3 files$`))
    assert.match(origins[1]!, new RegExp(`^  s3://${s3.bucket}/cdn/  done  100% of 6\\.\\d MiB, 3/3 files$`))
  })

  it('reads an HTTP source once for both origins, under the cap of the store\'s host', async () => {
    await writeLargeFile(join(sources, 'movie.mp4'), 4 << 20)
    // A per-host cap on one origin (for s3, the bucket): the shared read goes at its pace.
    const capped = await fetch(`http://127.0.0.1:${server.port}/admin/api/bandwidth`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ hosts: { [s3.bucket]: '2M' } }) })
    assert.equal(capped.status, 200)
    const started = Date.now()
    const id = await client.loadAsset(http.url('movie.mp4'), 'films/')
    const done = await taskWhen(server, id, (t) => t.state === 'succeeded' || t.state === 'failed')
    const seconds = (Date.now() - started) / 1000
    assert.equal(done.state, 'succeeded', JSON.stringify(done.lastError))
    assert.ok(seconds >= 1.7, `4 MiB under a 2 MiB/s cap on the store took ${seconds} s`)
    assert.equal(http.log.filter((r) => r.method === 'GET' && r.path === 'movie.mp4').length, 1)
    const expected = sha256(readFileSync(join(sources, 'movie.mp4')))
    assert.equal(sha256(readFileSync(onSftp('films/movie.mp4'))), expected)
    assert.equal(await objectSha256('cdn/films/movie.mp4'), expected)
  })

  it('purges from every origin', async () => {
    const id = await client.purgeAsset('show/')
    assert.equal((await client.waitFor(id, 50)).status, 'SUCCESS')
    assert.throws(() => statSync(onSftp('show')), { code: 'ENOENT' })
    assert.deepEqual(await keysUnder('cdn/show/'), [])
  })
})
