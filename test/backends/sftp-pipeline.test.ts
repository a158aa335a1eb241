// SFTP uploads send their last writes, fstat and close without waiting for the writes' replies.
// Through a far link (the test proxy) against OpenSSH: the bytes and the size the server reports are
// right, and a connection lost with requests in flight fails the upload and leaves no file behind.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { createSftpBackend } from '../../src/backends/sftp/index.js'
import type { BackendContext } from '../../src/backends/types.js'
import { PublishError } from '../../src/errors.js'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'
import { SSHD_MISSING, sshdInstalled, startSshd, type SftpServer } from '../servers/sftp-server.js'

const installed = sshdInstalled()
if (!installed) console.warn(`\n*** SKIPPED SFTP pipelining tests: ${SSHD_MISSING} ***\n`)
const never = new AbortController().signal

describe('sftp: pipelined uploads through a far link', { skip: installed ? false : SSHD_MISSING }, () => {
  let dir: string
  let sftp: SftpServer
  let proxy: FaultProxy
  let context: BackendContext

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apubi-sftp-pipeline-'))
    await chmod(dir, 0o711)
    await mkdir(join(dir, 'root'))
    sftp = (await startSshd(join(dir, 'root')))!
    proxy = await startFaultProxy(sftp.host, sftp.port, { delayMs: 10 })
    const knownHosts = join(dir, 'known_hosts')
    await writeFile(knownHosts, `${sftp.knownHostsLine.replace(`]:${sftp.port} `, `]:${proxy.port} `)}\n`)
    context = { hosts: createHostLimiter(4), timeoutMs: 10_000, ssh: { knownHostsFile: knownHosts, hostKeyPolicy: 'strict' }, s3: {} } as BackendContext
  })
  after(async () => {
    await proxy?.close()
    await sftp?.close()
    await rm(dir, { recursive: true, force: true })
  })

  const backend = () => createSftpBackend({ scheme: 'sftp', host: proxy.host, port: proxy.port, user: sftp.user, privateKey: sftp.privateKey }, context)
  const remote = (name: string) => `${sftp.root.slice(1)}/up/${name}`

  it('writes every byte and reports the size after the last write', async () => {
    const sftpBackend = backend()
    try {
      // Several write requests in flight, and a last one shorter than the others.
      const bytes = randomBytes(3 * 255 * 1024 + 12_345)
      const size = await sftpBackend.write(remote('whole.bin'), Readable.from([bytes]), never)
      assert.equal(size, bytes.length)
      assert.ok((await readFile(join(sftp.root, 'up/whole.bin'))).equals(bytes))
    } finally {
      await sftpBackend.close()
    }
  })

  it('fails the upload and leaves no file when the connection is lost with writes in flight', async () => {
    const sftpBackend = backend()
    try {
      // Reset once 1 MiB went up: the login is done, the file open, writes and the close unanswered.
      proxy.inject({ resetAfterUpBytes: 1 << 20 })
      const bytes = randomBytes(8 << 20)
      await assert.rejects(sftpBackend.write(remote('cut.bin'), Readable.from([bytes]), never), PublishError)
      assert.equal(proxy.stats.faulted, 1)
      assert.deepEqual(await readdir(join(sftp.root, 'up')).then((names) => names.filter((n) => n !== 'whole.bin')), [])
    } finally {
      await sftpBackend.close()
    }
  })
})
