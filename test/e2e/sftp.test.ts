import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { SSHD_MISSING, sshdInstalled, startSshd, type SftpServer } from '../servers/sftp-server.js'
import { eventually, listFiles, sha256File, writeLargeFile } from './helpers.js'

const LARGE = 64 << 20
const installed = sshdInstalled()
if (!installed) console.warn(`\n*** SKIPPED publishing through OpenSSH sshd: ${SSHD_MISSING} ***\n`)

describe('publishing through an SFTP server (OpenSSH sshd)', { skip: installed ? false : SSHD_MISSING }, () => {
  let server: TestServer
  let client: ApubiClient
  let sftp: SftpServer
  const dirs: string[] = []
  const servers: SftpServer[] = []
  /** A folder the SFTP user can reach: when we are root, the server logs in as another user. */
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'apubi-sftp-e2e-'))
    chmodSync(dir, 0o711)
    dirs.push(dir)
    return dir
  }
  const startSftp = async (): Promise<SftpServer> => {
    const root = join(tempDir(), 'root')
    mkdirSync(root)
    const started = await startSshd(root)
    assert.ok(started, SSHD_MISSING)
    servers.push(started)
    return started
  }

  before(async () => {
    sftp = await startSftp()
    const secrets = tempDir()
    const knownHosts = join(secrets, 'known_hosts')
    writeFileSync(knownHosts, `${sftp.knownHostsLine}\n`)
    const keyFile = join(secrets, 'id_ed25519')
    writeFileSync(keyFile, sftp.privateKey, { mode: 0o600 })
    // The URLs carry no user and no key: the server finds both in its per-host credentials.
    const config = join(secrets, 'apubi.json')
    writeFileSync(config, JSON.stringify({ credentials: [{ url: `sftp://${sftp.host}:${sftp.port}`, user: sftp.user, privateKeyFile: keyFile }] }))
    server = await startServer({ env: { APUBI_MAX_ATTEMPTS: '2', APUBI_SSH_KNOWN_HOSTS: knownHosts, APUBI_CONFIG: config } })
    client = new ApubiClient(server.url)
  })
  after(async () => {
    await server?.stop()
    for (const started of servers) await started.close()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('publishes a 64 MiB file file:// → sftp:// and back sftp:// → file://, bytes identical', async () => {
    const source = join(server.fileRoot, 'large.ts')
    await writeLargeFile(source, LARGE)
    const destination = sftp.url('vod/large.ts')
    const up = await client.loadAsset(pathToFileURL(source).href, destination)
    assert.deepEqual(await client.waitFor(up, 100), { status: 'SUCCESS', destinationAsset: destination })
    assert.equal(await sha256File(join(sftp.root, 'vod/large.ts')), await sha256File(source))
    assert.deepEqual(await listFiles(join(sftp.root, 'vod')), ['large.ts'], 'no temporary file left')

    const down = await client.loadAsset(destination, 'FromSftp/')
    assert.deepEqual(await client.waitFor(down, 100), { status: 'SUCCESS', destinationAsset: 'FromSftp/large.ts' })
    assert.equal(await sha256File(join(server.dataDir, 'cdn/FromSftp/large.ts')), await sha256File(source))
  })

  it('publishes a directory of 100 files in nested folders file:// → sftp://, then purges it', async () => {
    const package_ = join(server.fileRoot, 'package')
    const expected: string[] = []
    for (let i = 0; i < 100; i++) {
      const rel = `video/${i % 3}/${i % 5}/seg ${String(i).padStart(3, '0')}.ts`
      mkdirSync(join(package_, rel, '..'), { recursive: true })
      writeFileSync(join(package_, rel), randomBytes(1_000 + i * 511))
      expected.push(rel)
    }
    writeFileSync(join(package_, 'master.m3u8'), '#EXTM3U\n')
    expected.push('master.m3u8')

    const destination = sftp.url('hls/pkg/')
    const taskId = await client.loadAsset(`${pathToFileURL(package_).href}/`, destination)
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: destination })
    const published = join(sftp.root, 'hls/pkg')
    assert.deepEqual(await listFiles(published), expected.sort())
    for (const rel of expected) assert.deepEqual(readFileSync(join(published, rel)), readFileSync(join(package_, rel)), rel)

    const purge = await client.purgeAsset(destination)
    assert.equal((await client.waitFor(purge, 100)).status, 'SUCCESS')
    assert.equal(existsSync(published), false)
    assert.equal(existsSync(join(sftp.root, 'hls')), true, 'only the purged directory goes')
  })

  it('a source file the server does not let us read: FAILED with ERR_PERMISSION naming it, no temporary file left', async () => {
    const origin = join(sftp.root, 'locked')
    mkdirSync(origin)
    writeFileSync(join(origin, 'a.ts'), randomBytes(10_000))
    writeFileSync(join(origin, 'b.ts'), randomBytes(10_000))
    chmodSync(join(origin, 'b.ts'), 0o000)
    const target = join(server.fileRoot, 'locked-copy')
    const taskId = await client.loadAsset(sftp.url('locked/'), `${pathToFileURL(target).href}/`)
    assert.equal((await client.waitFor(taskId, 50)).status, 'FAILED')
    const line = await eventually(() => server.output().split('\n').find((l) => l.includes(taskId) && l.includes('task failed')))
    assert.match(line, /"code":"ERR_PERMISSION"/)
    assert.match(line, /locked\/b\.ts/)
    assert.deepEqual(readdirSync(target).filter((name) => name.includes('.apubi-')), [])
    assert.equal(existsSync(join(target, 'b.ts')), false)
  })

  it('a server whose host key is not in known_hosts: FAILED at once with ERR_AUTH naming the host key', async () => {
    const stranger = await startSftp()
    writeFileSync(join(server.fileRoot, 'small.ts'), 'small')
    // A user in the URL, as no credentials are held for this host: the host key is what fails.
    const destination = stranger.url('x.ts').replace('sftp://', `sftp://${stranger.user}@`)
    const taskId = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'small.ts')).href, destination)
    assert.equal((await client.waitFor(taskId, 50)).status, 'FAILED')
    const line = await eventually(() => server.output().split('\n').find((l) => l.includes(taskId) && l.includes('task failed')))
    assert.match(line, /"code":"ERR_AUTH"/)
    assert.match(line, /host key ssh-ed25519 SHA256:\S+ of \[127\.0\.0\.1\]:\d+ is not in /)
    assert.equal(existsSync(join(stranger.root, 'x.ts')), false)
  })
})
