// A package published to an SFTP destination behind a far link (the test proxy, OpenSSH behind it)
// (issue 18, "Real round trips"): a lane's next file opens with the last writes, fstat and close of
// the one before, whose rename leaves once their replies show it whole. The proxy counts the round
// trips a client waited for (`turns`): a count the machine's load does not change.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { isPublishError } from '../../src/errors.js'
import { parseLocation, publish, type Job, type TransferOptions } from '../../src/transfer/index.js'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'
import { SSHD_MISSING, sshdInstalled, startSshd, type SftpServer } from '../servers/sftp-server.js'

const installed = sshdInstalled()
if (!installed) console.warn(`\n*** SKIPPED far SFTP package tests: ${SSHD_MISSING} ***\n`)

/** Each way; a round trip costs twice as much. */
const DELAY_MS = 10

describe('a package to an SFTP destination through a far link', { skip: installed ? false : SSHD_MISSING }, () => {
  let dir: string
  const packages = {} as Record<'small' | 'large', { dir: string; files: Map<string, Buffer> }>
  let sftp: SftpServer
  let proxy: FaultProxy
  let knownHosts: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apubi-far-sftp-'))
    await chmod(dir, 0o711)
    await mkdir(join(dir, 'root'))
    sftp = (await startSshd(join(dir, 'root')))!
    proxy = await startFaultProxy(sftp.host, sftp.port, { delayMs: DELAY_MS })
    knownHosts = join(dir, 'known_hosts')
    await writeFile(knownHosts, `${sftp.knownHostsLine.replace(`]:${sftp.port} `, `]:${proxy.port} `)}\n`)
    for (const [name, segments] of [['small', 30], ['large', 90]] as const) {
      const at = join(dir, `source-${name}`)
      packages[name] = { dir: at, files: await writePackage(at, segments) }
    }
  })
  after(async () => {
    await proxy?.close()
    await sftp?.close()
    await rm(dir, { recursive: true, force: true })
  })

  const options = (extra: Partial<TransferOptions> = {}): TransferOptions => ({
    backends: { hosts: createHostLimiter(8), timeoutMs: 10_000, ssh: { knownHostsFile: knownHosts, hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} } },
    credentials: (endpoint) => (endpoint.scheme === 'sftp' ? { ...endpoint, user: sftp.user, privateKey: sftp.privateKey } : endpoint),
    checksums: [],
    parallelFiles: 4,
    connectionsPerHost: 8,
    ...extra,
  })
  /** The far destination of `name`: a folder below the server's root, reached through the proxy. */
  const farUrl = (name: string) => sftp.url(`${name}/`).replace(`:${sftp.port}/`, `:${proxy.port}/`)
  const publishTo = (name: string, source: string, extra?: Partial<TransferOptions>, job?: Partial<Job>) =>
    publish(parseLocation(pathToFileURL(join(source, 'master.m3u8')).href), parseLocation(farUrl(name)), { taskId: randomUUID(), signal: new AbortController().signal, onProgress: () => {}, ...job }, options(extra))
  /** The round trips the proxy counted while `work` ran. */
  const turnsOf = async (work: () => Promise<unknown>): Promise<number> => {
    const before = proxy.stats.turns
    await work()
    return proxy.stats.turns - before
  }

  it('publishes every file byte for byte, each file for no more than 2 round trips', async () => {
    // Lanes fixed at 4 (the cap): what a file costs does not depend on how fast the machine is.
    const fixed = { parallelFiles: 4, connectionsPerHost: 4 }
    const connections = proxy.stats.connections
    const small = await turnsOf(() => publishTo('small', packages.small.dir, fixed))
    const large = await turnsOf(() => publishTo('large', packages.large.dir, fixed))
    const logins = proxy.stats.connections - connections
    for (const [name, { files }] of Object.entries(packages)) {
      assert.deepEqual(await tree(join(sftp.root, name)), [...files.keys()].sort(), `${name}: no temporary file left, nothing missing`)
      for (const [rel, bytes] of files) assert.ok((await readFile(join(sftp.root, name, rel))).equals(bytes), `${name}/${rel}`)
    }
    // The logins, the folders made, the manifests, their checks and read-back are the same for both
    // packages (one listing of v0/ each): the difference is what the extra segments cost. Each: its
    // writes, fstat and close with the next file's open, then its rename with the next file's writes
    // (about one round trip; the target is two). A login's count varies by one (ssh2's key exchange
    // init leaves with or apart from its KEXINIT).
    const extra = packages.large.files.size - packages.small.files.size
    assert.ok(large - small <= 2 * extra + logins, `${small} round trips for ${packages.small.files.size} files, ${large} for ${packages.large.files.size}, ${logins} logins: ${((large - small) / extra).toFixed(2)} per file`)
  })

  it('fails, with no partial file under a final name, when the connection is reset mid-package', async () => {
    // Reset the first connection (folders made, then a lane's files) once 40 KB went up: its writes,
    // closes and renames in flight. The other lanes stop after their current files.
    proxy.inject({ resetAfterUpBytes: 40_000 })
    const faulted = proxy.stats.faulted
    await assert.rejects(publishTo('cut', packages.large.dir, {}, { lastAttempt: true }), (e) => isPublishError(e, 'ERR_TRANSFER') || isPublishError(e, 'ERR_UNREACHABLE'))
    assert.equal(proxy.stats.faulted, faulted + 1)
    const landed = await tree(join(sftp.root, 'cut'))
    assert.ok(landed.length < packages.large.files.size, `${landed.length} files landed`)
    // Each file under its final name is whole; no manifest, since their segments are not all there.
    for (const rel of landed) assert.ok((await readFile(join(sftp.root, 'cut', rel))).equals(packages.large.files.get(rel)!), `${rel} is not what was published`)
    assert.ok(!landed.some((rel) => rel.endsWith('.m3u8')), 'a manifest was published')
  })

  it('opens more lanes while the copy waits for round trips, up to the connection cap', async () => {
    proxy.stats.peak = 0
    await publishTo('grown', packages.large.dir, { parallelFiles: 1, connectionsPerHost: 6 })
    assert.deepEqual(await tree(join(sftp.root, 'grown')), [...packages.large.files.keys()].sort())
    // From 1 lane (1 connection) to more, never above the cap.
    assert.ok(proxy.stats.peak > 1 && proxy.stats.peak <= 6, `${proxy.stats.peak} connections at once`)
  })
})

/**
 * An HLS-like package in `dir`: `master.m3u8` naming `v0/index.m3u8`, which names `segments`
 * segments of 2–6 KiB of random bytes. @returns each file's bytes by its path relative to `dir`
 */
async function writePackage(dir: string, segments: number): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  const names = Array.from({ length: segments }, (_, i) => `seg_${String(i).padStart(4, '0')}.ts`)
  for (const name of names) files.set(`v0/${name}`, randomBytes(2048 + Math.floor(Math.random() * 4096)))
  const media = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', ...names.flatMap((n) => ['#EXTINF:2.0,', n]), '#EXT-X-ENDLIST', ''].join('\n')
  files.set('v0/index.m3u8', Buffer.from(media))
  files.set('master.m3u8', Buffer.from(['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=800000', 'v0/index.m3u8', ''].join('\n')))
  await mkdir(join(dir, 'v0'), { recursive: true })
  for (const [rel, bytes] of files) await writeFile(join(dir, rel), bytes)
  return files
}

/** Every file below `root`, relative, sorted: no temporary file left beside them. */
async function tree(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort()
}
