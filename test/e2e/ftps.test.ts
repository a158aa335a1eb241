import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFtpSrv, startVsftpd, vsftpdInstalled, writableDir, type FtpServer } from '../servers/ftp-server.js'
import { makeTestCertificates, type TestCertificates } from '../servers/tls.js'
import { eventually, listFiles, sha256File, writeLargeFile } from './helpers.js'

const LARGE = 64 << 20
const VSFTPD_MISSING = 'vsftpd is not installed: apt-get install -y vsftpd (.ci/run does)'

describe('publishing through FTPS servers', () => {
  let certs: TestCertificates
  let server: TestServer
  let client: ApubiClient
  const closers: Array<() => Promise<void>> = []
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'apubi-ftps-'))
    closers.push(async () => rmSync(dir, { recursive: true, force: true }))
    return dir
  }
  const started = async (ftp: Promise<FtpServer | undefined>): Promise<FtpServer | undefined> => {
    const ready = await ftp
    if (ready) closers.push(() => ready.close())
    return ready
  }
  /** A package of nested files under the server's file root; their paths relative to `name`. */
  const makePackage = (name: string): string[] => {
    const rels = ['master.m3u8', 'video/0/seg000.ts', 'video/0/seg001.ts', 'video/1/seg000.ts', 'audio/en/seg000.aac']
    for (const [i, rel] of rels.entries()) {
      mkdirSync(join(server.fileRoot, name, rel, '..'), { recursive: true })
      writeFileSync(join(server.fileRoot, name, rel), randomBytes(1_000 + i * 4_099))
    }
    return rels.sort()
  }
  const failure = async (taskId: string): Promise<string> =>
    eventually(() => server.output().split('\n').find((l) => l.includes(taskId) && l.includes('task failed')))

  before(async () => {
    certs = makeTestCertificates()
    server = await startServer({ env: { APUBI_CA_FILE: certs.files.ca, APUBI_MAX_ATTEMPTS: '2' } })
    client = new ApubiClient(server.url)
  })
  after(async () => {
    await server.stop()
    for (const close of closers.reverse()) await close()
    certs.remove()
  })

  it('publishes 64 MiB file:// → ftpes:// (explicit TLS, ftp-srv), bytes identical, and back', async () => {
    const ftp = (await started(startFtpSrv(tempDir(), { tls: certs })))!
    const source = join(server.fileRoot, 'a.ts')
    await writeLargeFile(source, LARGE)
    const up = await client.loadAsset(pathToFileURL(source).href, ftp.url('vod/a.ts'))
    assert.deepEqual(await client.waitFor(up, 100), { status: 'SUCCESS', destinationAsset: ftp.url('vod/a.ts') })
    assert.equal(await sha256File(join(ftp.root, 'vod/a.ts')), await sha256File(source))
    assert.deepEqual(await listFiles(join(ftp.root, 'vod')), ['a.ts'])

    const down = await client.loadAsset(ftp.url('vod/a.ts'), 'FromFtps/')
    assert.deepEqual(await client.waitFor(down, 100), { status: 'SUCCESS', destinationAsset: 'FromFtps/a.ts' })
    assert.equal(await sha256File(join(server.dataDir, 'cdn/FromFtps/a.ts')), await sha256File(source))
  })

  it('publishes a directory file:// → ftpes:// (ftp-srv), then PurgeAsset removes it', async () => {
    const ftp = (await started(startFtpSrv(tempDir(), { tls: certs })))!
    const rels = makePackage('pkg')
    const taskId = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'pkg')).href + '/', ftp.url('hls/pkg/'))
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: ftp.url('hls/pkg/') })
    assert.deepEqual(await listFiles(join(ftp.root, 'hls/pkg')), rels)
    for (const rel of rels) assert.deepEqual(readFileSync(join(ftp.root, 'hls/pkg', rel)), readFileSync(join(server.fileRoot, 'pkg', rel)), rel)

    const purge = await client.purgeAsset(ftp.url('hls/pkg/'))
    assert.equal((await client.waitFor(purge, 100)).status, 'SUCCESS')
    assert.equal(existsSync(join(ftp.root, 'hls/pkg')), false)
    assert.equal(existsSync(join(ftp.root, 'hls')), true, 'only the purged directory goes')
  })

  for (const implicit of [false, true]) {
    const scheme = implicit ? 'ftps:// (implicit TLS)' : 'ftpes:// (explicit TLS)'
    it(`publishes 64 MiB and a directory to vsftpd over ${scheme}, session reuse required, then purges`, async (t: TestContext) => {
      if (!vsftpdInstalled()) {
        console.warn(`\n*** SKIPPED ${t.name}: ${VSFTPD_MISSING} ***\n`)
        return t.skip(VSFTPD_MISSING)
      }
      const ftp = (await started(startVsftpd(tempDir(), { tls: certs.files, implicit })))!
      await writableDir(ftp, 'vod')
      const source = join(server.fileRoot, 'big.ts')
      if (!existsSync(source)) await writeLargeFile(source, LARGE)
      const file = await client.loadAsset(pathToFileURL(source).href, ftp.url('vod/big.ts'))
      assert.equal((await client.waitFor(file, 100)).status, 'SUCCESS')
      assert.equal(await sha256File(join(ftp.root, 'vod/big.ts')), await sha256File(source))

      const rels = makePackage('vs-pkg')
      const dir = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'vs-pkg')).href + '/', ftp.url('vod/pkg/'))
      assert.equal((await client.waitFor(dir, 100)).status, 'SUCCESS')
      assert.deepEqual(await listFiles(join(ftp.root, 'vod/pkg')), rels)
      const purge = await client.purgeAsset(ftp.url('vod/pkg/'))
      assert.equal((await client.waitFor(purge, 100)).status, 'SUCCESS')
      assert.equal(existsSync(join(ftp.root, 'vod/pkg')), false)
    })
  }

  it('an origin that refuses RNFR and RNTO still gets the whole directory, written in place, no temporary file left', async () => {
    const ftp = (await started(startFtpSrv(tempDir(), { tls: certs, blacklist: ['RNFR', 'RNTO'] })))!
    const rels = makePackage('norename')
    const taskId = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'norename')).href + '/', ftp.url('out/'))
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: ftp.url('out/') })
    assert.deepEqual(await listFiles(join(ftp.root, 'out')), rels)
    for (const rel of rels) assert.deepEqual(readFileSync(join(ftp.root, 'out', rel)), readFileSync(join(server.fileRoot, 'norename', rel)), rel)
  })

  it('a certificate the server does not trust: FAILED at once with ERR_AUTH naming the TLS certificate', async () => {
    const ftp = (await started(startFtpSrv(tempDir(), { tls: certs.untrusted })))!
    writeFileSync(join(server.fileRoot, 'small.ts'), 'small')
    const taskId = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'small.ts')).href, ftp.url('vod/small.ts'))
    assert.equal((await client.waitFor(taskId, 50)).status, 'FAILED')
    const line = await failure(taskId)
    assert.match(line, /"code":"ERR_AUTH"/)
    assert.match(line, /TLS certificate/)
    assert.ok(!server.output().split('\n').some((l) => l.includes(taskId) && l.includes('task will retry')), 'not retried')
    assert.doesNotMatch(server.output(), new RegExp(ftp.password))
  })
})
