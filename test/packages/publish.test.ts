// Streaming packages made by ffmpeg, published and purged the way a CDN needs them (issue 15): every
// manifest appears only after what it references, a failed publish shows no new manifest, what
// is published is read back, and ffprobe reads the published copy exactly as it reads the original.
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { openBackend } from '../../src/backends/index.js'
import { isPublishError } from '../../src/errors.js'
import { checkPackageRequest, parseLocation, publish, purge, type Job, type PublishedFile, type TransferOptions } from '../../src/transfer/index.js'
import { verifyPackage } from '../../src/transfer/package-verify.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { SSHD_MISSING, startSshd, type SftpServer } from '../servers/sftp-server.js'
import { FFMPEG_MISSING, ffmpegInstalled, makeDash, makeHls, probe, tree } from './packager.js'

const INOTIFY_MISSING = 'inotifywait is not installed: apt-get install -y inotify-tools (.ci/run does)'
const ffmpeg = ffmpegInstalled()
const inotify = spawnSync('inotifywait', ['--help']).status !== null && spawnSync('which', ['inotifywait']).status === 0
if (!ffmpeg) console.warn(`SKIPPED (loudly): streaming package tests: ${FFMPEG_MISSING}`)
if (!inotify) console.warn(`SKIPPED (loudly): order-of-appearance tests: ${INOTIFY_MISSING}`)

const work = mkdtempSync(join(tmpdir(), 'apubi-packages-'))
// The SFTP server runs as its own user: it must be able to pass through the folders above its root.
spawnSync('chmod', ['755', work])
const made = join(work, 'made')
let origin: HttpOrigin
let sftp: SftpServer | undefined

function options(extra: Partial<TransferOptions> = {}): TransferOptions {
  return {
    backends: {
      hosts: createHostLimiter(8),
      timeoutMs: 10_000,
      ssh: { knownHostsFile: join(work, 'known_hosts'), hostKeyPolicy: 'strict' },
      s3: { region: 'us-east-1', buckets: {} },
    },
    credentials: (endpoint) => (endpoint.scheme === 'sftp' && sftp ? { ...endpoint, user: sftp.user, privateKey: sftp.privateKey } : endpoint),
    checksums: ['md5'],
    parallelFiles: 4,
    connectionsPerHost: 8,
    ...extra,
  }
}

function job(extra: Partial<Job> = {}): Job {
  return { taskId: randomUUID(), signal: new AbortController().signal, onProgress: () => {}, ...extra }
}

const fileUrl = (path: string, dir = false) => `${pathToFileURL(path).href}${dir ? '/' : ''}`
const fresh = (name: string) => join(work, `${name}-${randomUUID().slice(0, 8)}`)
const manifestsIn = (dir: string) => [...tree(dir).keys()].filter((rel) => /\.(m3u8|mpd)$/.test(rel))

/** Copies a made package to a folder of its own (the tests change their sources). */
function copyOf(name: string): string {
  const dir = fresh(name)
  cpSync(join(made, name), dir, { recursive: true })
  return dir
}

/**
 * Moves every file of `source` that is no manifest and not in `published` out of the way, as if the
 * packager or an operator took them away mid-publish; the returned function puts them back.
 */
function holdBack(source: string, published: ReadonlySet<string>): () => void {
  const away = fresh('held-back')
  const moved = [...tree(source).keys()].filter((rel) => !/\.(m3u8|mpd)$/.test(rel) && !published.has(rel))
  for (const rel of moved) {
    mkdirSync(join(away, rel, '..'), { recursive: true })
    renameSync(join(source, rel), join(away, rel))
  }
  return () => {
    for (const rel of moved) renameSync(join(away, rel), join(source, rel))
  }
}

/** Watches `dir` (its subfolders must exist already) and returns the events `events` seen, as `EVENT rel`. */
async function watch(dir: string, events: string[]): Promise<{ stop(): Promise<string[]> }> {
  const child: ChildProcess = spawn('inotifywait', ['-m', '-r', ...events.flatMap((e) => ['-e', e]), '--format', '%e %w%f', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => d.toString().includes('Watches established') && resolve())
    child.once('exit', () => reject(new Error('inotifywait ended early')))
  })
  return {
    async stop() {
      // A last marker file, written and removed: once its event is out, every earlier event is too.
      const marker = join(dir, `.marker-${randomUUID()}`)
      writeFileSync(marker, '')
      rmSync(marker)
      const deadline = Date.now() + 10_000
      while (!out.includes(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      child.kill()
      return out
        .split('\n')
        .filter((line) => line && !line.includes('.marker-') && !line.includes('ISDIR'))
        .map((line) => line.replace(`${dir}/`, ''))
        .map((line) => line.replace(/^(\S+) (.*)$/, '$1 $2'))
    },
  }
}

/** The final names in the order they appeared: renamed into place or written in place, never a hidden temporary. */
const appeared = (events: string[]) =>
  events
    .filter((e) => /^(MOVED_TO|CLOSE_WRITE,CLOSE) /.test(e))
    .map((e) => e.slice(e.indexOf(' ') + 1))
    .filter((rel) => !rel.split('/').pop()!.startsWith('.'))

/**
 * Every HLS manifest appears after every other file of its folder (the media playlist after its
 * segments and init segment), the master last of all.
 */
function assertHlsOrder(order: string[]): void {
  const first = new Map<string, number>()
  order.forEach((rel, i) => first.has(rel) || first.set(rel, i))
  assert.equal(order[order.length - 1], 'master.m3u8', `the master appears last: ${order.join(', ')}`)
  for (const [rel, at] of first) {
    if (!rel.endsWith('/prog.m3u8')) continue
    const folder = rel.slice(0, rel.lastIndexOf('/') + 1)
    const later = [...first].filter(([other, when]) => other.startsWith(folder) && other !== rel && when > at)
    assert.deepEqual(later, [], `${rel} appears after every file of ${folder}`)
  }
}

before(async () => {
  if (!ffmpeg) return
  makeHls(join(made, 'hls-fmp4'))
  makeHls(join(made, 'hls-ts'), { segments: 'mpegts' })
  makeHls(join(made, 'hls-ranges'), { segments: 'mpegts', singleFile: true })
  makeHls(join(made, 'hls-v2'), { prefix: 'b', tone: 880 })
  makeDash(join(made, 'dash'))
  origin = await startHttpOrigin(work)
})

after(async () => {
  await origin?.close()
  await sftp?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('publishing a streaming package', { skip: !ffmpeg && FFMPEG_MISSING }, () => {
  it('at a file:// destination, every manifest appears only after all it references, the master last', { skip: !inotify && INOTIFY_MISSING }, async () => {
    const source = copyOf('hls-fmp4')
    const target = fresh('order-file')
    for (const sub of ['v0', 'v1', 'vaudio']) mkdirSync(join(target, sub), { recursive: true })
    const watcher = await watch(target, ['moved_to', 'close_write'])
    await publish(parseLocation(fileUrl(source, true)), parseLocation(fileUrl(target, true)), job(), options())
    assertHlsOrder(appeared(await watcher.stop()))
  })

  it('at an SFTP destination, the same order', { skip: !inotify && INOTIFY_MISSING }, async (t) => {
    const root = fresh('sftp-root')
    mkdirSync(root)
    sftp ??= await startSshd(root)
    if (!sftp) return t.skip(SSHD_MISSING)
    writeFileSync(join(work, 'known_hosts'), `${sftp.knownHostsLine}\n`)
    const target = join(sftp.root, 'order')
    for (const sub of ['v0', 'v1', 'vaudio']) mkdirSync(join(target, sub), { recursive: true })
    spawnSync('chown', ['-R', `${sftp.user}:`, target])
    const watcher = await watch(target, ['moved_to', 'close_write'])
    await publish(parseLocation(origin.url(`${copyOf('hls-ts').slice(work.length + 1)}/master.m3u8`)), parseLocation(`${sftp.url('order')}/`), job(), options())
    assertHlsOrder(appeared(await watcher.stop()))
    assert.equal(probe(join(target, 'master.m3u8')), probe(join(made, 'hls-ts/master.m3u8')))
  })

  const probed: Array<[name: string, manifest: string]> = [
    ['HLS with fMP4 segments', 'hls-fmp4/master.m3u8'],
    ['HLS with MPEG-TS segments', 'hls-ts/master.m3u8'],
    ['HLS with byte ranges of one file per rendition', 'hls-ranges/master.m3u8'],
    ['DASH with a SegmentTimeline', 'dash/manifest.mpd'],
  ]
  for (const [name, manifest] of probed) {
    it(`${name} from an HTTP origin: ffprobe reads the published copy as it reads the original, and the task learns what was verified`, async () => {
      const target = fresh('probe')
      const result = await publish(parseLocation(origin.url(`made/${manifest}`)), parseLocation(fileUrl(target, true)), job(), options())
      const file = manifest.slice(manifest.indexOf('/') + 1)
      assert.equal(probe(join(target, file)), probe(join(made, manifest)))
      assert.deepEqual(tree(target), tree(join(made, manifest.slice(0, manifest.indexOf('/')))))
      const summary = result.package!
      const dash = manifest.endsWith('.mpd')
      assert.equal(summary.manifests, dash ? 1 : 4)
      assert.equal(summary.renditions, dash ? 2 : 3)
      assert.equal(summary.referencedFiles, tree(target).size - 1, 'every file but the top manifest is referenced')
      assert.ok(summary.durationSeconds! >= 4 && summary.durationSeconds! < 6, `duration ${summary.durationSeconds}`)
    })
  }

  it('reads each playlist from the origin once: the bytes listed are the bytes published', async () => {
    const source = copyOf('hls-fmp4')
    const before = origin.log.length
    await publish(parseLocation(origin.url(`${source.slice(work.length + 1)}/master.m3u8`)), parseLocation(fileUrl(fresh('once'), true)), job(), options())
    const playlistRequests = origin.log.slice(before).filter((r) => r.path.endsWith('.m3u8'))
    assert.deepEqual(playlistRequests.map((r) => r.method), ['GET', 'GET', 'GET', 'GET'])
  })

  it('keeps each segment\'s own query string (a signed URL), and sends the manifest URL\'s where a reference has none', async () => {
    const source = copyOf('hls-ts')
    const playlist = join(source, 'v0/prog.m3u8')
    const signed = readFileSync(playlist, 'utf8').replace(/^(seg\d+\.ts)$/gm, (_, name: string) => `${name}?sig=${name.length}${name}`)
    writeFileSync(playlist, signed)
    const target = fresh('signed')
    const before = origin.log.length
    await publish(parseLocation(`${origin.url(`${source.slice(work.length + 1)}/master.m3u8`)}?auth=m`), parseLocation(fileUrl(target, true)), job(), options())
    const requests = origin.log.slice(before)
    const segments = requests.filter((r) => /v0\/seg\d+\.ts$/.test(r.path))
    assert.ok(segments.length >= 4)
    for (const r of segments) assert.equal(r.query, `?sig=${r.path.split('/').pop()!.length}${r.path.split('/').pop()}`, `${r.method} ${r.path}`)
    for (const r of requests.filter((r) => r.path.endsWith('.m3u8') || r.path.includes('/v1/'))) assert.equal(r.query, '?auth=m', r.path)
    assert.equal(readFileSync(join(target, 'v0/prog.m3u8'), 'utf8'), signed, 'the published playlist keeps the signed references')
  })
})

describe('a failed package publish shows no new manifest', { skip: !ffmpeg && FFMPEG_MISSING }, () => {
  it('first publish: a segment vanishing mid-publish from the origin leaves no manifest at the destination', async () => {
    const source = copyOf('hls-fmp4')
    const target = fresh('first')
    let vanished = false
    const onFile = (file: PublishedFile): void => {
      if (vanished) return
      vanished = true
      holdBack(source, new Set([file.rel]))
    }
    await assert.rejects(
      publish(parseLocation(origin.url(`${source.slice(work.length + 1)}/master.m3u8`)), parseLocation(fileUrl(target, true)), job({ onFile }), options({ parallelFiles: 1 })),
      (e) => isPublishError(e, 'ERR_NOT_FOUND'),
    )
    assert.ok(vanished)
    assert.deepEqual(manifestsIn(target), [])
  })

  it('republish: the old version stays whole and playable until the new one is all in; a retry continues where it stopped', async () => {
    const target = fresh('republish')
    await publish(parseLocation(fileUrl(join(made, 'hls-fmp4'), true)), parseLocation(fileUrl(target, true)), job(), options())
    const oldManifests = new Map(manifestsIn(target).map((rel) => [rel, readFileSync(join(target, rel), 'utf8')]))
    // From an HTTP origin: its listing starts with the master, so only the ordering keeps it back.
    const source = copyOf('hls-v2')
    const v2 = parseLocation(origin.url(`${source.slice(work.length + 1)}/master.m3u8`))
    const recorded = new Map<string, PublishedFile>()
    let putBack: (() => void) | undefined
    const onFile = (file: PublishedFile): void => {
      recorded.set(file.rel, file)
      if (recorded.size === 5) putBack = holdBack(source, new Set(recorded.keys()))
    }
    const taskId = randomUUID()
    await assert.rejects(
      publish(v2, parseLocation(fileUrl(target, true)), job({ taskId, onFile }), options({ parallelFiles: 1 })),
      (e) => isPublishError(e, 'ERR_NOT_FOUND'),
    )
    for (const [rel, text] of oldManifests) assert.equal(readFileSync(join(target, rel), 'utf8'), text, `${rel} is still the old one`)
    assert.equal(probe(join(target, 'master.m3u8')), probe(join(made, 'hls-fmp4/master.m3u8')), 'the old package still plays whole')

    putBack!()
    const again: string[] = []
    await publish(v2, parseLocation(fileUrl(target, true)), job({ taskId, completed: recorded, onFile: (f) => void again.push(f.rel) }), options())
    assert.deepEqual(again.filter((rel) => recorded.has(rel) && !rel.endsWith('.m3u8')), [], 'files the failed attempt published are not copied again')
    assert.equal(probe(join(target, 'master.m3u8')), probe(join(made, 'hls-v2/master.m3u8')))
    assert.equal(readFileSync(join(target, 'v0/prog.m3u8'), 'utf8'), readFileSync(join(made, 'hls-v2/v0/prog.m3u8'), 'utf8'))
  })
})

describe('verification after publish', { skip: !ffmpeg && FFMPEG_MISSING }, () => {
  it('a reference missing at the destination fails the publish with ERR_PACKAGE_INCOMPLETE naming it, and no manifest is left visible', async () => {
    const target = fresh('missing')
    const onFile = (file: PublishedFile): void => {
      if (file.rel === 'v1/seg2.m4s') unlinkSync(join(target, file.rel))
    }
    await assert.rejects(publish(parseLocation(fileUrl(join(made, 'hls-fmp4'), true)), parseLocation(fileUrl(target, true)), job({ onFile }), options()), (e) => {
      assert.ok(isPublishError(e, 'ERR_PACKAGE_INCOMPLETE'))
      assert.equal((e as Error).message, 'v1/prog.m3u8 references v1/seg2.m4s, which is missing at the destination')
      return true
    })
    assert.deepEqual(manifestsIn(target), [])
  })

  it('reads each manifest back from the destination: a reference missing or of another size there is named', async () => {
    const target = fresh('readback')
    cpSync(join(made, 'dash'), target, { recursive: true })
    const sizes = tree(target)
    const backend = openBackend({ scheme: 'file', host: '', port: 0 }, options().backends)
    const summary = await verifyPackage(backend, target, ['manifest.mpd'], sizes, new AbortController().signal)
    assert.deepEqual(summary, { manifests: 1, renditions: 2, referencedFiles: sizes.size - 1, durationSeconds: 4 })
    writeFileSync(join(target, 'chunk-1-00003.m4s'), 'cut')
    await assert.rejects(verifyPackage(backend, target, ['manifest.mpd'], sizes, new AbortController().signal), {
      code: 'ERR_PACKAGE_INCOMPLETE',
      message: `manifest.mpd references chunk-1-00003.m4s, which has 3 bytes at the destination, ${sizes.get('chunk-1-00003.m4s')} published`,
    })
    unlinkSync(join(target, 'chunk-0-00002.m4s'))
    await assert.rejects(verifyPackage(backend, target, ['manifest.mpd'], sizes, new AbortController().signal), {
      code: 'ERR_PACKAGE_INCOMPLETE',
      message: 'manifest.mpd references chunk-0-00002.m4s, which is missing at the destination',
    })
    await backend.close()
  })

  it('a source whose manifest names a file it does not hold is refused before anything is copied', async () => {
    const source = copyOf('hls-ts')
    unlinkSync(join(source, 'v1/seg1.ts'))
    const target = fresh('incomplete-source')
    await assert.rejects(publish(parseLocation(fileUrl(source, true)), parseLocation(fileUrl(target, true)), job(), options()), {
      code: 'ERR_PACKAGE_INCOMPLETE',
      message: 'v1/prog.m3u8 references v1/seg1.ts, which is not in the source',
    })
    assert.equal(existsSync(target) ? tree(target).size : 0, 0)
  })
})

describe('a destination that names a file', { skip: !ffmpeg && FFMPEG_MISSING }, () => {
  it('a manifest source with x/Asset.m3u8 publishes the package into x/, the manifest under the name given', async () => {
    const target = fresh('named')
    const result = await publish(parseLocation(fileUrl(join(made, 'hls-ts/master.m3u8'))), parseLocation(fileUrl(join(target, 'Asset.m3u8'))), job(), options())
    assert.equal(result.directory, true)
    const expected = [...tree(join(made, 'hls-ts')).keys()].map((rel) => (rel === 'master.m3u8' ? 'Asset.m3u8' : rel)).sort()
    assert.deepEqual([...tree(target).keys()].sort(), expected)
    assert.equal(probe(join(target, 'Asset.m3u8')), probe(join(made, 'hls-ts/master.m3u8')))
  })

  const refused: Array<[name: string, source: () => string, destination: string, message: RegExp]> = [
    ['a manifest source with a destination naming no manifest', () => fileUrl(join(made, 'hls-ts/master.m3u8')), 'Asset', /names neither a folder nor a manifest of the same kind: end the destination with '\/'/],
    ['an HLS source with a destination naming an MPD', () => fileUrl(join(made, 'hls-ts/master.m3u8')), 'Asset.mpd', /names neither a folder nor a manifest of the same kind/],
    ['a folder source with a destination naming a manifest', () => fileUrl(join(made, 'hls-ts'), true), 'master.m3u8', /the source is a folder, but the destination master\.m3u8 names a manifest file/],
  ]
  for (const [name, source, destination, message] of refused) {
    it(`${name}: refused with ERR_REQUEST_INVALID when asked, and when worked on`, async () => {
      const target = fresh('refused')
      const [from, to] = [parseLocation(source()), parseLocation(fileUrl(join(target, destination)))]
      await assert.rejects(checkPackageRequest(from, to, options()), { code: 'ERR_REQUEST_INVALID', message })
      await assert.rejects(publish(from, to, job(), options()), { code: 'ERR_REQUEST_INVALID', message })
      assert.equal(existsSync(target), false)
    })
  }

  it('a manifest naming a file outside its package is refused when asked (from HTTP) and when worked on (any storage), with the reason', async () => {
    const source = fresh('outside')
    mkdirSync(join(source, 'pkg'), { recursive: true })
    writeFileSync(join(source, 'pkg/index.m3u8'), '#EXTM3U\n#EXTINF:4,\n../elsewhere/seg.ts\n#EXT-X-ENDLIST\n')
    const from = parseLocation(origin.url(`${source.slice(work.length + 1)}/pkg/index.m3u8`))
    await assert.rejects(checkPackageRequest(from, parseLocation(fileUrl(fresh('x'), true)), options()), {
      code: 'ERR_POLICY_DENIED',
      message: new RegExp(`^${from.url.replace(/[.?]/g, '\\$&')}: /outside-\\w+/elsewhere/seg\\.ts is outside the package directory /outside-\\w+/pkg/$`),
    })
    await assert.rejects(publish(parseLocation(fileUrl(join(source, 'pkg/index.m3u8'))), parseLocation(fileUrl(fresh('x'), true)), job(), options()), {
      code: 'ERR_POLICY_DENIED',
      message: `${source}/pkg/index.m3u8: ${source}/elsewhere/seg.ts is outside the package directory ${source}/pkg/`,
    })
  })
})

describe('purging a package', { skip: (!ffmpeg && FFMPEG_MISSING) || (!inotify && INOTIFY_MISSING) }, () => {
  it('removes the master first, then the media playlists, then everything else', async () => {
    const target = fresh('purge')
    await publish(parseLocation(fileUrl(join(made, 'hls-fmp4'), true)), parseLocation(fileUrl(target, true)), job(), options())
    const holder = fresh('purge-holder')
    mkdirSync(holder)
    renameSync(target, join(holder, 'pkg'))
    const watcher = await watch(holder, ['delete'])
    await purge(parseLocation(fileUrl(join(holder, 'pkg'), true)), job(), options())
    const deleted = (await watcher.stop()).filter((e) => e.startsWith('DELETE ')).map((e) => e.slice('DELETE pkg/'.length))
    assert.equal(deleted[0], 'master.m3u8')
    assert.deepEqual(deleted.slice(1, 4).sort(), ['v0/prog.m3u8', 'v1/prog.m3u8', 'vaudio/prog.m3u8'])
    assert.equal(deleted.length, tree(join(made, 'hls-fmp4')).size)
    assert.equal(existsSync(join(holder, 'pkg')), false)
  })
})
