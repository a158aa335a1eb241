import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFtpSrv, type FtpServer } from '../servers/ftp-server.js'
import { eventually, listFiles, sha256File, writeLargeFile } from './helpers.js'

const LARGE = 256 << 20

describe('publishing through real FTP servers', () => {
  let server: TestServer
  let client: ApubiClient
  let origin: FtpServer
  let repository: FtpServer
  const dirs: string[] = []
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'apubi-ftp-'))
    dirs.push(dir)
    return dir
  }

  before(async () => {
    server = await startServer({ env: { APUBI_MAX_ATTEMPTS: '2' } })
    client = new ApubiClient(server.url)
    origin = await startFtpSrv(tempDir())
    repository = await startFtpSrv(tempDir())
  })
  after(async () => {
    await server.stop()
    await origin.close()
    await repository.close()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('publishes a large file file:// → ftp:// and back ftp:// → file://, bytes identical', async () => {
    const source = join(server.fileRoot, 'large.ts')
    await writeLargeFile(source, LARGE)
    const up = await client.loadAsset(pathToFileURL(source).href, origin.url('vod/large.ts'))
    assert.deepEqual(await client.waitFor(up, 100), { status: 'SUCCESS', destinationAsset: origin.url('vod/large.ts') })
    assert.equal(await sha256File(join(origin.root, 'vod/large.ts')), await sha256File(source))

    const down = await client.loadAsset(origin.url('vod/large.ts'), 'FromFtp/')
    assert.deepEqual(await client.waitFor(down, 100), { status: 'SUCCESS', destinationAsset: 'FromFtp/large.ts' })
    assert.equal(await sha256File(join(server.dataDir, 'cdn/FromFtp/large.ts')), await sha256File(source))
    assert.deepEqual(await listFiles(join(origin.root, 'vod')), ['large.ts'])
  })

  it('publishes a directory of 300 files in nested folders ftp:// → ftp://, then purges it', async () => {
    const expected: string[] = []
    for (let i = 0; i < 300; i++) {
      const rel = `package/video/${i % 3}/${i % 7}/seg${String(i).padStart(4, '0')}.ts`
      mkdirSync(join(repository.root, rel, '..'), { recursive: true })
      writeFileSync(join(repository.root, rel), randomBytes(1_000 + i * 37))
      expected.push(rel.slice('package/'.length))
    }
    writeFileSync(join(repository.root, 'package/master.m3u8'), '#EXTM3U\n')
    expected.push('master.m3u8')

    const taskId = await client.loadAsset(repository.url('package/'), origin.url('hls/pkg/'))
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: origin.url('hls/pkg/') })
    const published = join(origin.root, 'hls/pkg')
    assert.deepEqual(await listFiles(published), expected.sort())
    for (const rel of expected) assert.deepEqual(readFileSync(join(published, rel)), readFileSync(join(repository.root, 'package', rel)), rel)

    const purge = await client.purgeAsset(origin.url('hls/pkg/'))
    assert.equal((await client.waitFor(purge, 100)).status, 'SUCCESS')
    assert.equal(existsSync(published), false)
    assert.equal(existsSync(join(origin.root, 'hls')), true, 'only the purged directory goes')
  })

  it('a refused login ends FAILED at once with the reason, and the password appears nowhere', async () => {
    const wrong = origin.url('vod/x.ts').replace(`:${origin.password}@`, ':N0t-The-Passw0rd@')
    writeFileSync(join(server.fileRoot, 'small.ts'), 'small')
    const taskId = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'small.ts')).href, wrong)
    assert.equal((await client.waitFor(taskId, 50)).status, 'FAILED')
    const line = await eventually(() => server.output().split('\n').find((l) => l.includes(taskId) && l.includes('task failed')))
    assert.match(line, /"code":"ERR_AUTH"/)
    assert.match(line, /127\.0\.0\.1/)
    assert.doesNotMatch(server.output(), /N0t-The-Passw0rd/)
    assert.doesNotMatch(server.output(), new RegExp(origin.password))
  })

  it('an FTP server that goes away mid-upload: retried, then FAILED with the reason, nothing under the final name', async () => {
    const root = tempDir()
    const doomed = await startFtpSrv(root)
    const source = join(server.fileRoot, 'large.ts')
    const taskId = await client.loadAsset(pathToFileURL(source).href, doomed.url('gone/large.ts'))
    await eventually(async () => {
      const part = (await listFiles(join(root, 'gone')).catch(() => [])).find((f) => f.endsWith('.part'))
      return part && statSync(join(root, 'gone', part)).size > 0 ? part : undefined
    })
    await doomed.close()
    assert.equal((await client.waitFor(taskId, 50)).status, 'FAILED')
    assert.equal(existsSync(join(root, 'gone/large.ts')), false)
    const lines = server.output().split('\n').filter((l) => l.includes(taskId))
    assert.ok(lines.some((l) => l.includes('task will retry')), 'the first failure was retried')
    assert.match(lines.find((l) => l.includes('task failed')) ?? '', /"code":"ERR_(UNREACHABLE|TRANSFER)"/)
  })
})
