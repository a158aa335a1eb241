import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ApubiClient, ApubiFault } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { makeTestCertificates, type TestCertificates } from '../servers/tls.js'
import { eventually, listFiles, sha256File, writeLargeFile } from './helpers.js'

const LARGE = 64 << 20
const VARIANTS = ['360p', '720p', '1080p']
const SEGMENTS = 20

function put(root: string, rel: string, content: string | Buffer): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true })
  writeFileSync(join(root, rel), content)
}

/** master.m3u8 → a media playlist per variant folder → an init segment and SEGMENTS segments each. */
function writeHlsPackage(dir: string): void {
  const master = ['#EXTM3U', '#EXT-X-VERSION:7']
  VARIANTS.forEach((name, i) => {
    master.push(`#EXT-X-STREAM-INF:BANDWIDTH=${(i + 1) * 1_000_000},CODECS="avc1.4d401f"`, `video/${name}/prog.m3u8`)
    const playlist = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:4', '#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-MAP:URI="init.mp4"']
    put(dir, `video/${name}/init.mp4`, randomBytes(700 + i))
    for (let s = 0; s < SEGMENTS; s++) {
      const segment = `seg-${String(s).padStart(3, '0')}.m4s`
      playlist.push('#EXTINF:4.000,', segment)
      put(dir, `video/${name}/${segment}`, randomBytes(10_000 + 997 * s + i))
    }
    put(dir, `video/${name}/prog.m3u8`, [...playlist, '#EXT-X-ENDLIST', ''].join('\n'))
  })
  put(dir, 'master.m3u8', [...master, ''].join('\n'))
}

/** manifest.mpd with a SegmentTemplate over $RepresentationID$ and $Number%05d$: 2 × (init + 5 segments). */
function writeDashPackage(dir: string): void {
  const mpd = `<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT20S">
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate timescale="1000" duration="4000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number%05d$.m4s"/>
      <Representation id="low" bandwidth="500000"/>
      <Representation id="high" bandwidth="3000000"/>
    </AdaptationSet>
  </Period>
</MPD>
`
  put(dir, 'manifest.mpd', mpd)
  for (const id of ['low', 'high']) {
    put(dir, `${id}/init.mp4`, randomBytes(600))
    for (let n = 1; n <= 5; n++) put(dir, `${id}/${String(n).padStart(5, '0')}.m4s`, randomBytes(20_000 + n))
  }
}

/** Both trees hold the same relative paths with the same bytes. */
async function assertSameTree(published: string, source: string): Promise<void> {
  const files = await listFiles(source)
  assert.deepEqual(await listFiles(published), files)
  for (const rel of files) assert.deepEqual(readFileSync(join(published, rel)), readFileSync(join(source, rel)), rel)
}

describe('publishing from HTTP(S) origins', () => {
  let certificates: TestCertificates
  let server: TestServer
  let client: ApubiClient
  let secure: HttpOrigin
  let plain: HttpOrigin
  let root: string

  before(async () => {
    certificates = makeTestCertificates()
    root = mkdtempSync(join(tmpdir(), 'apubi-http-e2e-'))
    writeHlsPackage(join(root, 'vod'))
    writeDashPackage(join(root, 'dash'))
    writeHlsPackage(join(root, 'tokenized'))
    secure = await startHttpOrigin(root, { tls: certificates })
    plain = await startHttpOrigin(root, { token: { prefix: 'tokenized/', value: 'T0k3n' } })
    server = await startServer({ env: { APUBI_CA_FILE: certificates.files.ca, APUBI_MAX_ATTEMPTS: '2' } })
    client = new ApubiClient(server.url)
  })
  after(async () => {
    await server.stop()
    await secure.close()
    await plain.close()
    rmSync(root, { recursive: true, force: true })
    certificates.remove()
  })

  it('publishes an HLS package over https from its master playlist: the same tree as the origin', async () => {
    const taskId = await client.loadAsset(secure.url('vod/master.m3u8'), 'Pkg/')
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: 'Pkg/' })
    await assertSameTree(join(server.dataDir, 'cdn/Pkg'), join(root, 'vod'))
    assert.equal((await listFiles(join(root, 'vod'))).length, 1 + VARIANTS.length * (2 + SEGMENTS))
    assert.equal(secure.requests('vod/video/720p/prog.m3u8'), 1, 'one GET: the bytes listed are the bytes published')
  })

  it('sends the source URL\'s query (a CDN token) with every request of the package', async () => {
    const taskId = await client.loadAsset(`${plain.url('tokenized/master.m3u8')}?token=T0k3n`, 'Tokenized/')
    assert.equal((await client.waitFor(taskId, 100)).status, 'SUCCESS')
    await assertSameTree(join(server.dataDir, 'cdn/Tokenized'), join(root, 'tokenized'))
    assert.doesNotMatch(server.output(), /T0k3n/, 'the token is not logged')
  })

  it('publishes a DASH package from its MPD', async () => {
    const taskId = await client.loadAsset(plain.url('dash/manifest.mpd'), 'Dash/')
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: 'Dash/' })
    await assertSameTree(join(server.dataDir, 'cdn/Dash'), join(root, 'dash'))
  })

  it('publishes a single 64 MiB file over http, bytes identical', async () => {
    mkdirSync(join(root, 'big'), { recursive: true })
    await writeLargeFile(join(root, 'big/large.bin'), LARGE)
    const taskId = await client.loadAsset(plain.url('big/large.bin'), 'Big/')
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: 'Big/large.bin' })
    assert.equal(await sha256File(join(server.dataDir, 'cdn/Big/large.bin')), await sha256File(join(root, 'big/large.bin')))
  })

  it('a manifest published to a manifest file name publishes its package into that folder, under the name given', async () => {
    const taskId = await client.loadAsset(plain.url('vod/master.m3u8'), 'Named/Asset.m3u8')
    assert.deepEqual(await client.waitFor(taskId, 100), { status: 'SUCCESS', destinationAsset: 'Named/Asset.m3u8' })
    const published = await listFiles(join(server.dataDir, 'cdn/Named'))
    assert.deepEqual(published, (await listFiles(join(root, 'vod'))).map((rel) => (rel === 'master.m3u8' ? 'Asset.m3u8' : rel)).sort())
    assert.equal(readFileSync(join(server.dataDir, 'cdn/Named/Asset.m3u8'), 'utf8'), readFileSync(join(root, 'vod/master.m3u8'), 'utf8'))
  })

  it('a manifest published to a name that is no manifest is refused at once with a Client fault saying what to send', async () => {
    await assert.rejects(client.loadAsset(plain.url('vod/master.m3u8'), 'Named/Asset'), (e: unknown) => {
      assert.ok(e instanceof ApubiFault)
      assert.match(e.faultcode, /Client$/)
      assert.match(e.detail, /master\.m3u8 is a streaming package, and the destination Asset names neither a folder nor a manifest of the same kind: end the destination with '\/'/)
      return true
    })
  })

  it('a missing manifest ends FAILED with ERR_NOT_FOUND naming the URL', async () => {
    const taskId = await client.loadAsset(secure.url('vod/absent.m3u8'), 'Absent/')
    assert.equal((await client.waitFor(taskId, 100)).status, 'FAILED')
    const line = await eventually(() => server.output().split('\n').find((l) => l.includes(taskId) && l.includes('task failed')))
    assert.match(line, /"code":"ERR_NOT_FOUND"/)
    assert.match(line, /https:\/\/127\.0\.0\.1:\d+\/vod\/absent\.m3u8/)
  })
})
