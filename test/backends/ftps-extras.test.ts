// FTP(S) behaviour beyond the conformance suite: certificates, passive modes, TLS session reuse,
// long uploads, server-side digests and servers that refuse to rename.
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { after, describe, it, type TestContext } from 'node:test'
import { Client } from 'basic-ftp'
import { FileSystem } from 'ftp-srv'
import { createFtpBackend } from '../../src/backends/ftp/index.js'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import type { Backend, BackendContext, Endpoint } from '../../src/backends/types.js'
import { PublishError, type Code } from '../../src/errors.js'
import { parseLocation, publish, type PublishedFile } from '../../src/transfer/index.js'
import { startFtpSrv, startVsftpd, vsftpdInstalled, writableDir, type FtpServer, type FtpSrvOptions, type VsftpdOptions } from '../servers/ftp-server.js'
import { makeTestCertificates } from '../servers/tls.js'

const MiB = 1 << 20
const VSFTPD_MISSING = 'vsftpd is not installed: apt-get install -y vsftpd (.ci/run does)'
const certs = makeTestCertificates()
const never = new AbortController().signal
const cleanups: Array<() => Promise<void>> = []
// Each ftp-srv adds SIGTERM, SIGINT and SIGQUIT listeners it never removes; this file starts a dozen.
process.setMaxListeners(50)
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  certs.remove()
})

/** What the backend trusts: the test CA unless `tlsCa` is null (Node's bundle alone). */
function context(tlsCa: string | null = certs.ca): BackendContext {
  return {
    hosts: createHostLimiter(4),
    timeoutMs: 4_000,
    ...(tlsCa && { tlsCa }),
    ssh: { knownHostsFile: '/nonexistent/known_hosts', hostKeyPolicy: 'strict' },
    s3: { region: 'us-east-1', buckets: {} },
  }
}

function endpointOf(server: FtpServer): Endpoint {
  return { scheme: server.scheme, host: server.host, port: server.port, user: server.user, password: server.password }
}

/** A fresh root, the server on it, and a backend on the server: all closed after the file's tests. */
async function serve(start: (root: string) => Promise<FtpServer | undefined>): Promise<{ server: FtpServer; backend: Backend } | undefined> {
  const root = await mkdtemp(join(tmpdir(), 'apubi-ftps-'))
  cleanups.push(() => rm(root, { recursive: true, force: true }))
  const server = await start(root)
  if (!server) return undefined
  cleanups.push(() => server.close())
  const backend = createFtpBackend(endpointOf(server), context())
  cleanups.push(() => backend.close())
  return { server, backend }
}

const ftpSrv = (options: FtpSrvOptions = {}) => serve((root) => startFtpSrv(root, { tls: certs, ...options }))
const vsftpd = (options: Omit<VsftpdOptions, 'tls'> = {}) => serve((root) => startVsftpd(root, { tls: certs.files, ...options }))

function skipWithoutVsftpd(t: TestContext): boolean {
  if (vsftpdInstalled()) return false
  console.warn(`\n*** SKIPPED ${t.name}: ${VSFTPD_MISSING} ***\n`)
  t.skip(VSFTPD_MISSING)
  return true
}

async function rejectsWith(promise: Promise<unknown>, code: Code, message?: RegExp): Promise<PublishError> {
  let caught: unknown
  await assert.rejects(promise, (e: unknown) => {
    caught = e
    return true
  })
  assert.ok(caught instanceof PublishError, `not a PublishError: ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  if (message) assert.match(caught.message, message)
  return caught
}

function body(text: string | Buffer): Readable {
  return Readable.from([Buffer.from(text)])
}

async function bytes(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

async function text(stream: Readable): Promise<string> {
  return (await bytes(stream)).toString('utf8')
}

describe('FTPS certificates', () => {
  for (const implicit of [false, true]) {
    const mode = implicit ? 'implicit' : 'explicit'
    it(`a certificate from an untrusted CA is ERR_AUTH naming the TLS certificate, not retried (${mode})`, async () => {
      const served = await serve((root) => startFtpSrv(root, { tls: certs.untrusted, implicit }))
      const error = await rejectsWith(served!.backend.stat('.', never), 'ERR_AUTH', /TLS certificate/)
      assert.equal(error.retryable, false)
      assert.doesNotMatch(error.message, new RegExp(served!.server.password))
    })
  }

  it('the test CA is trusted only when APUBI_CA_FILE (context.tlsCa) names it', async () => {
    const served = await ftpSrv()
    const untrusting = createFtpBackend(endpointOf(served!.server), context(null))
    try {
      await rejectsWith(untrusting.stat('.', never), 'ERR_AUTH', /TLS certificate/)
    } finally {
      await untrusting.close()
    }
    assert.deepEqual(await served!.backend.stat('.', never), { path: '.', type: 'directory', size: 0 })
  })

  it('ftpes:// to a server without TLS is ERR_AUTH saying it refuses TLS, never a login in the clear', async () => {
    const plain = await serve((root) => startFtpSrv(root))
    const backend = createFtpBackend({ ...endpointOf(plain!.server), scheme: 'ftpes' }, context())
    try {
      await rejectsWith(backend.stat('.', never), 'ERR_AUTH', /refuses TLS/)
    } finally {
      await backend.close()
    }
  })
})

describe('FTPS passive modes and session reuse', () => {
  it('ftp-srv with implicit TLS (ftps://): a file round-trips', async () => {
    const { server, backend } = (await ftpSrv({ implicit: true }))!
    assert.equal(server.scheme, 'ftps')
    await roundTrip(backend, 'implicit.bin', MiB)
  })

  it('ftp-srv refusing EPSV: transfers go through PASV', async () => {
    const { backend } = (await ftpSrv({ blacklist: ['EPSV'] }))!
    await roundTrip(backend, 'pasv.bin', MiB)
  })

  it('vsftpd refusing EPSV: transfers go through PASV, still resuming the TLS session', async (t) => {
    if (skipWithoutVsftpd(t)) return
    const { server, backend } = (await vsftpd({ deny: ['EPSV'] }))!
    await writableDir(server, 'up')
    await roundTrip(backend, 'up/pasv.bin', MiB)
  })

  it('vsftpd really refuses a data connection that does not resume the TLS session (what FileZilla Server does)', async (t) => {
    if (skipWithoutVsftpd(t)) return
    const { server } = (await vsftpd())!
    await writableDir(server, 'up')
    // A plain basic-ftp client, but one whose data connections start a TLS session of their own.
    const client = new Client(4_000)
    try {
      await client.access({ host: server.host, port: server.port, user: server.user, password: server.password, secure: true, secureOptions: { ca: [certs.ca] } })
      const socket = client.ftp.socket as unknown as { getSession(): Buffer | undefined }
      socket.getSession = () => undefined
      await assert.rejects(client.uploadFrom(body('x'), 'up/fresh-session.txt'), /522 SSL connection failed: session reuse required/)
    } finally {
      client.close()
    }
  })

  it('vsftpd: a 64 MiB upload outlasting its idle timeout keeps the control connection (no NOOP needed)', { timeout: 60_000 }, async (t) => {
    if (skipWithoutVsftpd(t)) return
    const { server, backend } = (await vsftpd({ idleSessionTimeoutS: 1 }))!
    await writableDir(server, 'up')
    const hash = createHash('sha256')
    // 64 MiB in 1 MiB chunks at about 20 MiB/s: some 3 s, three times vsftpd's idle timeout.
    const slow = Readable.from(
      (async function* () {
        for (let i = 0; i < 64; i++) {
          const chunk = Buffer.alloc(MiB, i)
          hash.update(chunk)
          yield chunk
          await sleep(50)
        }
      })(),
      { objectMode: false },
    )
    await backend.write('up/slow.bin', slow, never)
    assert.equal(createHash('sha256').update(readFileSync(join(server.root, 'up/slow.bin'))).digest('hex'), hash.digest('hex'))
    // The same connection, pooled again, still answers after the upload.
    assert.deepEqual(await backend.stat('up/slow.bin', never), { path: 'up/slow.bin', type: 'file', size: 64 * MiB })
    // And the timeout is real: a control connection idle for longer is dropped.
    const idle = new Client(4_000)
    try {
      await idle.access({ host: server.host, port: server.port, user: server.user, password: server.password, secure: true, secureOptions: { ca: [certs.ca] } })
      await sleep(2_000)
      await assert.rejects(idle.pwd())
    } finally {
      idle.close()
    }
  })
})

describe('digests computed by the server', () => {
  const content = 'The quick brown fox jumps over the lazy dog'
  const expected = {
    sha256: createHash('sha256').update(content).digest('hex'),
    md5: createHash('md5').update(content).digest('hex'),
  }

  for (const [name, hashes, offers] of [
    ['HASH (draft-bryan-ftpext-hash), selected with OPTS HASH', ['HASH'], { sha256: true, md5: true }],
    ['XSHA256 and XMD5 (ProFTPD mod_digest, Serv-U)', ['XSHA256', 'XMD5'], { sha256: true, md5: true }],
    ['MD5 (draft-twine-ftpmd5), an upper-case reply', ['MD5'], { sha256: false, md5: true }],
    ['no digest command (ftp-srv as it is)', [], { sha256: false, md5: false }],
  ] as const) {
    it(`${name}: ${Object.entries(offers).map(([a, on]) => `${a} ${on ? 'matches' : 'undefined'}`).join(', ')}`, async () => {
      const { backend } = (await ftpSrv({ hashes }))!
      await backend.write('fox.txt', body(content), never)
      for (const algorithm of ['sha256', 'md5'] as const) {
        assert.equal(await backend.hash!('fox.txt', algorithm, never), offers[algorithm] ? expected[algorithm] : undefined, algorithm)
      }
      // Both algorithms again, in the other order: OPTS HASH switches back and forth.
      assert.equal(await backend.hash!('fox.txt', 'md5', never), offers.md5 ? expected.md5 : undefined)
      assert.equal(await backend.hash!('fox.txt', 'sha256', never), offers.sha256 ? expected.sha256 : undefined)
    })
  }

  it('a digest of a missing file is ERR_NOT_FOUND', async () => {
    const { backend } = (await ftpSrv({ hashes: ['HASH'] }))!
    await rejectsWith(backend.hash!('missing.txt', 'sha256', never), 'ERR_NOT_FOUND')
  })

  it('vsftpd offers no digest command: undefined, so the copy checks the size only', async (t) => {
    if (skipWithoutVsftpd(t)) return
    const { server, backend } = (await vsftpd())!
    await writableDir(server, 'up')
    await backend.write('up/fox.txt', body(content), never)
    assert.equal(await backend.hash!('up/fox.txt', 'sha256', never), undefined)
    assert.equal(await backend.hash!('up/fox.txt', 'md5', never), undefined)
  })
})

describe('a publish to a server that reports digests', () => {
  const content = 'The quick brown fox jumps over the lazy dog'

  /** Publishes `content` as a file to `rel` on `server`, as a task does; the files recorded. */
  async function publishTo(server: FtpServer, rel: string): Promise<PublishedFile[]> {
    const dir = await mkdtemp(join(tmpdir(), 'apubi-digest-source-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    await writeFile(join(dir, 'fox.txt'), content)
    const recorded: PublishedFile[] = []
    const job = { taskId: randomUUID(), signal: never, onProgress: () => {}, onFile: (file: PublishedFile) => void recorded.push(file) }
    const options = { backends: context(), credentials: (e: Endpoint) => e, checksums: ['md5', 'sha256'] as const, parallelFiles: 1, connectionsPerHost: 4 }
    await publish(parseLocation(pathToFileURL(join(dir, 'fox.txt')).href), parseLocation(server.url(rel)), job, options)
    return recorded
  }

  it('is verified by the strongest digest the server reports', async () => {
    const { server } = (await ftpSrv({ hashes: ['XSHA256', 'XMD5'] }))!
    const [file] = await publishTo(server, 'fox.txt')
    assert.equal(file?.verifiedBy, 'sha256')
    assert.equal(file?.sha256, createHash('sha256').update(content).digest('hex'))
    assert.equal(readFileSync(join(server.root, 'fox.txt'), 'utf8'), content)
  })

  it('a digest that differs from ours is ERR_VERIFY naming both, and nothing is left under the final name or a temporary one', async () => {
    const { server } = (await ftpSrv({ hashes: ['XSHA256'], fileSystem: (connection, root) => new CorruptReads(connection, { root, cwd: '/' }) }))!
    const error = await rejectsWith(publishTo(server, 'fox.txt'), 'ERR_VERIFY', /reports sha256 [0-9a-f]{64}, we sent [0-9a-f]{64}/)
    assert.match(error.message, new RegExp(createHash('sha256').update(content).digest('hex')))
    assert.deepEqual(readdirSync(server.root), [])
  })
})

/** ftp-srv's file system, except that every read gives the file with its first byte changed: a disk that corrupts. */
class CorruptReads extends FileSystem {
  override async read(fileName: string, options?: { start?: number }): Promise<{ stream: Readable; clientPath: string }> {
    const read = (await super.read(fileName, options)) as { stream: Readable; clientPath: string }
    let first = true
    const corrupt = new Transform({
      transform(chunk: Buffer, _, done) {
        if (first && chunk.length > 0) {
          chunk = Buffer.from(chunk)
          chunk[0]! ^= 1
          first = false
        }
        done(null, chunk)
      },
    })
    return { ...read, stream: read.stream.pipe(corrupt) }
  }
}

/** ftp-srv's file system, except that files already in `protected` can be neither replaced by a rename nor deleted. */
class ProtectedFiles extends FileSystem {
  static readonly paths = new Set<string>()
  override rename(from: string, to: string): Promise<unknown> {
    if (ProtectedFiles.paths.has(to.replace(/^\//, ''))) return Promise.reject(new Error('File exists'))
    return super.rename(from, to)
  }

  override delete(path: string): Promise<unknown> {
    if (ProtectedFiles.paths.has(path.replace(/^\//, ''))) return Promise.reject(new Error('Permission denied'))
    return super.delete(path)
  }
}

describe('a server that refuses to rename', () => {
  it('refusing RNFR and RNTO: rename copies in place, and the backend stops claiming atomic renames', async () => {
    const { server, backend } = (await ftpSrv({ blacklist: ['RNFR', 'RNTO'] }))!
    assert.equal(backend.features.atomicRename, true)
    await backend.write('dir/.a.ts.part', body('new content'), never)
    await backend.write('dir/a.ts', body('old and longer content'), never)
    await backend.rename('dir/.a.ts.part', 'dir/a.ts', never)
    assert.equal(readFileSync(join(server.root, 'dir/a.ts'), 'utf8'), 'new content')
    assert.equal(existsSync(join(server.root, 'dir/.a.ts.part')), false)
    assert.equal(backend.features.atomicRename, false)
    await rejectsWith(backend.rename('dir/missing.ts', 'dir/a.ts', never), 'ERR_NOT_FOUND')
    assert.equal(await text(await backend.read('dir/a.ts', never)), 'new content')
  })

  it('refusing to replace a file it also refuses to delete: the file is written in place under its name', async () => {
    ProtectedFiles.paths.add('dir/a.ts')
    const { server, backend } = (await ftpSrv({ fileSystem: (connection, root) => new ProtectedFiles(connection, { root, cwd: '/' }) }))!
    await writeFile(join(await writableDir(server, 'dir'), 'a.ts'), 'published by someone else')
    await backend.write('dir/.a.ts.part', body('ours'), never)
    await backend.rename('dir/.a.ts.part', 'dir/a.ts', never)
    assert.equal(readFileSync(join(server.root, 'dir/a.ts'), 'utf8'), 'ours')
    assert.equal(existsSync(join(server.root, 'dir/.a.ts.part')), false)
    // A rename onto a name that is free still works: the server renames, only not onto that file.
    const fresh = (await ftpSrv({ fileSystem: (connection, root) => new ProtectedFiles(connection, { root, cwd: '/' }) }))!
    await fresh.backend.write('b.part', body('b'), never)
    await fresh.backend.rename('b.part', 'b.ts', never)
    assert.equal(fresh.backend.features.atomicRename, true)
  })
})

async function roundTrip(backend: Backend, path: string, size: number): Promise<void> {
  const data = Buffer.alloc(size, 7)
  await backend.write(path, body(data), never)
  assert.deepEqual(await backend.stat(path, never), { path, type: 'file', size })
  assert.ok((await bytes(await backend.read(path, never))).equals(data))
}
