import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it, type TestContext } from 'node:test'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { createSftpBackend, remotePath } from '../../src/backends/sftp/index.js'
import { hostMatches, judgeHostKey, knownHostName, parseKnownHosts } from '../../src/backends/sftp/known-hosts.js'
import type { Backend, BackendContext, Endpoint, SshOptions } from '../../src/backends/types.js'
import { PublishError, type Code } from '../../src/errors.js'
import { freePort } from '../servers/apubi-server.js'
import { keygen, SSHD_MISSING, startSshd, type SftpServer } from '../servers/sftp-server.js'
import { backendConformance } from './conformance.js'

const WRONG_PASSWORD = 'Wrong-Sftp-Guess-0815'
const never = new AbortController().signal

/** A temporary root for the server, a known_hosts file trusting it, and the endpoint of its user. */
async function setUp(): Promise<{ server: SftpServer; endpoint: Endpoint; knownHosts: string; dir: string } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'apubi-sftp-'))
  // The server's user (not us, when we are root) must pass through it to reach `root`.
  await chmod(dir, 0o711)
  const root = join(dir, 'root')
  await mkdir(root)
  const server = await startSshd(root)
  if (!server) {
    await rm(dir, { recursive: true })
    return undefined
  }
  const knownHosts = join(dir, 'known_hosts')
  await writeFile(knownHosts, `${server.knownHostsLine}\n`)
  const endpoint: Endpoint = { scheme: 'sftp', host: server.host, port: server.port, user: server.user, privateKey: server.privateKey }
  return { server, endpoint, knownHosts, dir }
}

// The suite's paths come as URL parsing leaves them (`tmp/…/suite`, no leading slash): taken from `/`.
backendConformance('sftp (openssh)', async (context) => {
  const setup = await setUp()
  if (!setup) return { skip: SSHD_MISSING }
  const { server, endpoint, knownHosts, dir } = setup
  const ssh: SshOptions = { knownHostsFile: knownHosts, hostKeyPolicy: 'strict' }
  const backend = createSftpBackend(endpoint, { ...context, ssh })
  const suite = `${server.root.slice(1)}/suite`
  await backend.mkdir(suite, never)
  const { privateKey: _key, ...withoutKey } = endpoint
  return {
    backend,
    root: suite,
    network: true,
    ...(server.password !== undefined && { secret: server.password }),
    wrongPassword: () => ({ backend: createSftpBackend({ ...withoutKey, password: WRONG_PASSWORD }, { ...context, ssh }), password: WRONG_PASSWORD }),
    close: async () => {
      await backend.close()
      await server.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
})

describe('sftp: host keys, logins, paths', () => {
  let setup: Awaited<ReturnType<typeof setUp>>
  const backends: Backend[] = []
  const open = (endpoint: Endpoint, ssh: Partial<SshOptions> = {}, timeoutMs = 4_000): Backend => {
    const context: BackendContext = {
      hosts: createHostLimiter(2),
      timeoutMs,
      ssh: { knownHostsFile: setup!.knownHosts, hostKeyPolicy: 'strict', ...ssh },
      s3: { region: 'us-east-1', buckets: {} },
    }
    const backend = createSftpBackend(endpoint, context)
    backends.push(backend)
    return backend
  }
  const rejectsWith = (promise: Promise<unknown>, code: Code, pattern: RegExp, secret?: string) =>
    assert.rejects(promise, (e: unknown) => {
      assert.ok(e instanceof PublishError, String(e))
      assert.equal(e.code, code, e.message)
      assert.match(e.message, pattern)
      if (secret) assert.ok(!e.message.includes(secret), `secret in message: ${e.message}`)
      return true
    })
  /** A test that needs the server; skipped, loudly, without sshd. */
  const test = (title: string, body: (s: NonNullable<typeof setup>, t: TestContext) => Promise<void>) =>
    it(title, { timeout: 30_000 }, async (t) => {
      if (!setup) return t.skip(SSHD_MISSING)
      await body(setup, t)
    })

  before(async () => {
    setup = await setUp()
    if (!setup) console.warn(`\n*** SKIPPED sftp host key and login tests: ${SSHD_MISSING} ***\n`)
  })
  after(async () => {
    for (const backend of backends) await backend.close()
    await setup?.server.close()
    if (setup) await rm(setup.dir, { recursive: true, force: true })
  })

  test('strict refuses a host whose key is not in known_hosts, with ERR_AUTH naming the host key', async ({ endpoint, dir }) => {
    const empty = join(dir, 'empty_known_hosts')
    await writeFile(empty, '# nobody yet\n')
    await rejectsWith(open(endpoint, { knownHostsFile: empty }).stat('/', never), 'ERR_AUTH', /host key ssh-ed25519 SHA256:\S+ of \[127\.0\.0\.1\]:\d+ is not in .*empty_known_hosts/)
    assert.equal(await readFile(empty, 'utf8'), '# nobody yet\n', 'strict never writes')
  })

  test('accept-new records a first-seen host key, says so, and strict trusts it afterwards', async ({ endpoint, server, dir }) => {
    const file = join(dir, 'new', 'known_hosts')
    const told: string[] = []
    const options = { knownHostsFile: file, hostKeyPolicy: 'accept-new' as const, onKeyRecorded: (line: string) => told.push(line) }
    assert.equal((await open(endpoint, options).stat('/', never)).type, 'directory')
    assert.equal(await readFile(file, 'utf8'), `${server.knownHostsLine}\n`)
    assert.equal(told.length, 1)
    assert.match(told[0]!, /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 SHA256:\S+$/)
    assert.equal((await open(endpoint, { knownHostsFile: file }).stat('/', never)).type, 'directory')
  })

  test('accept-new records a host once when sessions open in parallel', async ({ endpoint, server, dir }) => {
    const file = join(dir, 'parallel_known_hosts')
    const backend = open(endpoint, { knownHostsFile: file, hostKeyPolicy: 'accept-new' })
    await Promise.all(Array.from({ length: 4 }, () => backend.stat('/', never)))
    assert.equal(await readFile(file, 'utf8'), `${server.knownHostsLine}\n`)
  })

  test('a changed host key is refused even with accept-new, and known_hosts stays as it was', async ({ endpoint, server, dir }) => {
    const other = join(dir, 'impostor_key')
    keygen(other)
    const [type, key] = (await readFile(`${other}.pub`, 'utf8')).split(' ')
    const file = join(dir, 'changed_known_hosts')
    const recorded = `${knownHostName(server.host, server.port)} ${type} ${key}\n`
    await writeFile(file, recorded)
    await rejectsWith(open(endpoint, { knownHostsFile: file, hostKeyPolicy: 'accept-new' }).stat('/', never), 'ERR_AUTH', /host key .* differs from the key recorded in .*changed_known_hosts \(line 1\)/)
    assert.equal(await readFile(file, 'utf8'), recorded)
  })

  test('a hashed known_hosts entry (ssh-keygen -H) is trusted', async ({ endpoint, server, dir }) => {
    const file = join(dir, 'hashed_known_hosts')
    await writeFile(file, `${server.knownHostsLine}\n`)
    const hashed = spawnSync('ssh-keygen', ['-H', '-f', file], { encoding: 'utf8' })
    assert.equal(hashed.status, 0, hashed.stderr)
    assert.match(await readFile(file, 'utf8'), /^\|1\|/)
    assert.equal((await open(endpoint, { knownHostsFile: file }).stat('/', never)).type, 'directory')
  })

  test('a wrong password is ERR_AUTH without the password in the message', async ({ endpoint }) => {
    const { privateKey: _key, ...withoutKey } = endpoint
    await rejectsWith(open({ ...withoutKey, password: WRONG_PASSWORD }).stat('/', never), 'ERR_AUTH', /^stat sftp:\/\/127\.0\.0\.1:\d+\/: login refused for user /, WRONG_PASSWORD)
  })

  test('a key the server does not know is ERR_AUTH without key material in the message', async ({ endpoint, dir }) => {
    const stranger = join(dir, 'stranger_key')
    keygen(stranger)
    const privateKey = await readFile(stranger, 'utf8')
    const body = privateKey.split('\n')[1]!
    await rejectsWith(open({ ...endpoint, privateKey }).stat('/', never), 'ERR_AUTH', /login refused/, body)
  })

  test('a password login works where the server takes one', async ({ endpoint, server }, t) => {
    if (server.password === undefined) return t.skip('password logins need root to set the test user up')
    const { privateKey: _key, ...withoutKey } = endpoint
    const backend = open({ ...withoutKey, password: server.password })
    await backend.write(`${server.root}/by-password.txt`, Readable.from([Buffer.from('pw')]), never)
    assert.equal(await readFile(join(server.root, 'by-password.txt'), 'utf8'), 'pw')
  })

  test('a port nobody listens on is ERR_UNREACHABLE', async ({ endpoint }) => {
    await rejectsWith(open({ ...endpoint, port: await freePort() }).stat('/', never), 'ERR_UNREACHABLE', /ECONNREFUSED/)
  })

  test('a server that accepts but never greets is ERR_UNREACHABLE after the timeout', async ({ endpoint }) => {
    const sockets = new Set<Socket>()
    const silent = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1')
    await once(silent, 'listening')
    try {
      const { port } = silent.address() as AddressInfo
      await rejectsWith(open({ ...endpoint, port }, {}, 300).stat('/', never), 'ERR_UNREACHABLE', /Timed out while waiting for handshake/)
    } finally {
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  })

  test('~/ paths are relative to the login directory, other paths start at /', async ({ endpoint, server }) => {
    const backend = open(endpoint)
    await backend.write('~/home/x.txt', Readable.from([Buffer.from('home')]), never)
    assert.equal(await readFile(join(server.root, 'home/x.txt'), 'utf8'), 'home')
    assert.deepEqual(await backend.list('~/home', never), [{ path: '~/home/x.txt', type: 'file', size: 4 }])
    assert.deepEqual(await backend.stat(`${server.root.slice(1)}/home/x.txt`, never), { path: `${server.root.slice(1)}/home/x.txt`, type: 'file', size: 4 })
  })

  test('read from an offset, and an append continues the file', async ({ endpoint, server }) => {
    const backend = open(endpoint)
    const path = `${server.root.slice(1)}/resume/file.bin`
    const first = randomBytes(300_000)
    const second = randomBytes(200_000)
    await backend.write(path, Readable.from([first]), never)
    await backend.write(path, Readable.from([second]), never, { append: true })
    const whole = Buffer.concat([first, second])
    assert.deepEqual(await readFile(join(server.root, 'resume/file.bin')), whole)
    assert.deepEqual(await bytes(await backend.read(path, never, 123_457)), whole.subarray(123_457))
    assert.deepEqual(await bytes(await backend.read(path, never, whole.length)), Buffer.alloc(0))
  })

  test('an append to a missing file creates it', async ({ endpoint, server }) => {
    const backend = open(endpoint)
    await backend.write(`${server.root}/fresh/appended.txt`, Readable.from([Buffer.from('new')]), never, { append: true })
    assert.equal(await readFile(join(server.root, 'fresh/appended.txt'), 'utf8'), 'new')
  })

  test('a connection lost mid-write is ERR_TRANSFER, and nothing is left at the path', async ({ endpoint, server }) => {
    const backend = open(endpoint)
    const path = `${server.root}/lost/file.bin`
    let sent = 0
    const body = Readable.from(
      (async function* () {
        for (;;) {
          if ((sent += 1) === 20) server.dropConnections()
          yield randomBytes(256 * 1024)
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      })(),
    )
    await rejectsWith(backend.write(path, body, never), 'ERR_TRANSFER', /^write sftp:.*connection lost/)
    await assert.rejects(readFile(join(server.root, 'lost/file.bin')), { code: 'ENOENT' })
  })

  test('an abort during a read ends the stream with ERR_SHUTDOWN', async ({ endpoint, server }) => {
    const backend = open(endpoint)
    const path = `${server.root}/abort/big.bin`
    await backend.write(path, Readable.from([randomBytes(8 << 20)]), never)
    const abort = new AbortController()
    const stream = await backend.read(path, abort.signal)
    stream.once('data', () => abort.abort())
    await rejectsWith(bytes(stream), 'ERR_SHUTDOWN', /^read sftp:.*aborted/)
  })
})

describe('sftp: paths from URLs', () => {
  const table: Array<[string, string]> = [
    ['srv/media/a.ts', '/srv/media/a.ts'],
    ['/srv/media', '/srv/media'],
    ['.', '/'],
    ['~', '.'],
    ['~/', '.'],
    ['~/media/a.ts', 'media/a.ts'],
    ['~user/x', '/~user/x'],
  ]
  for (const [path, remote] of table) {
    it(`${JSON.stringify(path)} is ${JSON.stringify(remote)} on the server`, () => assert.equal(remotePath(path), remote))
  }
})

describe('sftp: known_hosts', () => {
  const ed25519 = wireKey('ssh-ed25519', 1)
  const other = wireKey('ssh-ed25519', 2)
  const ecdsa = wireKey('ecdsa-sha2-nistp256', 3)
  const line = (hosts: string, key: Buffer) => `${hosts} ${key.subarray(4, 4 + key.readUInt32BE(0)).toString()} ${key.toString('base64')}`
  const salt = Buffer.from('0123456789abcdefghij')
  const hashed = (name: string) => `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`

  it('parses plain, marked and commented lines; skips malformed and @cert-authority ones', () => {
    const text = [
      '# comment',
      '',
      line('host.example,10.0.0.1', ed25519),
      `@revoked * ${line('', other).trim()}`,
      `@cert-authority *.example ${line('', ecdsa).trim()}`,
      'broken-line-without-key',
      `mismatch ssh-rsa ${ed25519.toString('base64')}`,
      `${line('[h]:2222', ecdsa)} a comment`,
    ].join('\n')
    assert.deepEqual(
      parseKnownHosts(text).map(({ line, revoked, hosts, keyType }) => ({ line, revoked, hosts, keyType })),
      [
        { line: 3, revoked: false, hosts: 'host.example,10.0.0.1', keyType: 'ssh-ed25519' },
        { line: 4, revoked: true, hosts: '*', keyType: 'ssh-ed25519' },
        { line: 8, revoked: false, hosts: '[h]:2222', keyType: 'ecdsa-sha2-nistp256' },
      ],
    )
  })

  const matches: Array<[string, string, number, boolean]> = [
    ['host.example', 'host.example', 22, true],
    ['HOST.example', 'host.EXAMPLE', 22, true],
    ['host.example', 'host.example', 2222, false],
    ['[host.example]:2222', 'host.example', 2222, true],
    ['[host.example]:2222', 'host.example', 22, false],
    ['a,host.example,b', 'host.example', 22, true],
    ['*.example', 'host.example', 22, true],
    ['*.example,!bad.example', 'bad.example', 22, false],
    ['h?st.example', 'host.example', 22, true],
    ['10.0.0.*', '10.0.0.7', 22, true],
    ['[10.0.0.*]:*', '10.0.0.7', 2222, true],
    [hashed('host.example'), 'host.example', 22, true],
    [hashed('[host.example]:2222'), 'host.example', 2222, true],
    [hashed('host.example'), 'other.example', 22, false],
  ]
  for (const [hosts, host, port, expected] of matches) {
    it(`${hosts} ${expected ? 'names' : 'does not name'} ${host} port ${port}`, () => assert.equal(hostMatches(hosts, knownHostName(host, port)), expected))
  }

  const entries = parseKnownHosts([line('known', ed25519), line('other', ecdsa), `@revoked * ${line('', other).trim()}`].join('\n'))
  const verdicts: Array<[string, Buffer, ReturnType<typeof judgeHostKey>]> = [
    ['known', ed25519, 'known'],
    ['unheard-of', ed25519, 'unknown'],
    ['known', ecdsa, 'changed'], // another type for a known host is no way around the check
    ['unheard-of', other, 'revoked'],
  ]
  for (const [host, key, expected] of verdicts) {
    it(`a key for ${host} is ${expected}`, () => assert.equal(judgeHostKey(entries, host, key), expected))
  }
})

/** A wire-format public key of `type` with a distinct dummy body. */
function wireKey(type: string, seed: number): Buffer {
  const name = Buffer.from(type)
  const header = Buffer.alloc(4)
  header.writeUInt32BE(name.length)
  return Buffer.concat([header, name, Buffer.alloc(36, seed)])
}

async function bytes(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}
