import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { fill, seconds } from '../../src/packages/dash.js'
import { enumeratePackage, type PackageListing } from '../../src/packages/enumerate.js'
import { PublishError } from '../../src/errors.js'

const ORIGIN = 'http://origin.test'
const fixtures = new URL('../fixtures/packages/', import.meta.url).pathname

/** Lists the package of a fixture manifest as if `test/fixtures/packages/` were served at `/pkg/`. */
function fromFixtures(manifest: string): Promise<PackageListing> {
  return enumeratePackage(ORIGIN, `pkg/${manifest}`, (path) => {
    assert.ok(path.startsWith('pkg/'), `read outside the package: ${path}`)
    return readFile(fixtures + path.slice('pkg/'.length))
  })
}

/** Lists a package held in memory: backend path → text. */
function fromTexts(manifest: string, texts: Record<string, string>): Promise<PackageListing> {
  return enumeratePackage(ORIGIN, manifest, async (path) => {
    const text = texts[path]
    if (text === undefined) throw new PublishError('ERR_NOT_FOUND', `no ${path}`)
    return Buffer.from(text)
  })
}

const rels = (listing: PackageListing) => listing.files.map((f) => f.rel).sort()

describe('enumeratePackage lists every file of a package, each once', () => {
  const cases: Array<[name: string, manifest: string, files: string[], skipped: string[]]> = [
    [
      'HLS master: variants, audio rendition, I-frame playlist, EXT-X-MAP, keys, byte ranges',
      'hls/master.m3u8',
      [
        'audio/en/chunk 1.aac',
        'audio/en/chunk 3.aac',
        'audio/en/init.mp4',
        'audio/en/prog.m3u8',
        'master.m3u8',
        'video/360p/init-2.mp4',
        'video/360p/init.mp4',
        'video/360p/key.bin',
        'video/360p/prog.m3u8',
        'video/360p/seg-1.m4s',
        'video/360p/seg-2.m4s',
        'video/360p/seg-3.m4s',
        'video/720p/iframes.m3u8',
        'video/720p/main.mp4',
        'video/720p/prog.m3u8',
      ],
      ['skd://asset-42', 'https://ads.example/break/chunk.aac'],
    ],
    [
      'DASH SegmentTemplate with $Number%05d$, $Bandwidth$ and @duration',
      'dash/number.mpd',
      [
        'audio/128000/0.m4s',
        'audio/128000/1.m4s',
        'audio/128000/2.m4s',
        'audio/128000/init.mp4',
        'number.mpd',
        'video/v360/init.mp4',
        'video/v360/seg-00001.m4s',
        'video/v360/seg-00002.m4s',
        'video/v360/seg-00003.m4s',
        'video/v720/init.mp4',
        'video/v720/seg-00001.m4s',
        'video/v720/seg-00002.m4s',
        'video/v720/seg-00003.m4s',
      ],
      [],
    ],
    [
      'DASH SegmentTimeline with $Time$, repeats, and a repeat to the end of the period',
      'dash/timeline.mpd',
      [
        'aac/10_1000.m4s',
        'aac/11_6000.m4s',
        'aac/12_11000.m4s',
        'aac/init.mp4',
        'hd-0.m4s',
        'hd-270000.m4s',
        'hd-540000.m4s',
        'hd-810000.m4s',
        'hd-init.mp4',
        'timeline.mpd',
      ],
      [],
    ],
    [
      'DASH SegmentList, with media URLs and with byte ranges of one file',
      'dash/list.mpd',
      ['list.mpd', 'ranged/all.mp4', 'sd/a.m4s', 'sd/b.m4s', 'sd/c.m4s', 'sd/init.mp4'],
      [],
    ],
    [
      'DASH BaseURL per level and per representation, SegmentBase, an absolute BaseURL elsewhere',
      'dash/baseurl.mpd',
      ['baseurl.mpd', 'media/video/1080/movie.mp4', 'media/video/540/1.m4s', 'media/video/540/2.m4s', 'media/video/540/init.mp4'],
      ['https://cdn.example/subs/en.vtt'],
    ],
  ]
  for (const [name, manifest, files, skipped] of cases) {
    it(name, async () => {
      const listing = await fromFixtures(manifest)
      assert.deepEqual(rels(listing), files)
      assert.deepEqual(listing.skipped.map((s) => s.uri).sort(), skipped.sort())
    })
  }

  it('gives backend paths beside relative ones, the manifest first', async () => {
    const { files } = await fromFixtures('hls/master.m3u8')
    assert.deepEqual({ ...files[0], body: undefined }, { rel: 'master.m3u8', path: 'pkg/hls/master.m3u8', body: undefined })
    assert.ok(files[0]!.body?.toString('utf8').startsWith('#EXTM3U'), 'the manifest comes with the bytes read to list it')
    assert.ok(files.some((f) => f.rel === 'audio/en/chunk 1.aac' && f.path === 'pkg/hls/audio/en/chunk 1.aac'))
  })
})

describe('enumeratePackage keeps to the manifest directory', () => {
  const hls = (...lines: string[]) => ['#EXTM3U', ...lines, '#EXT-X-ENDLIST'].join('\n')

  const refused: Array<[name: string, line: string]> = [
    ['a relative segment above the directory', '../other/seg.ts'],
    ['a root-relative segment outside the directory', '/elsewhere/seg.ts'],
    ['an encoded slash hiding ..', '..%2F..%2Fetc%2Fpasswd'],
  ]
  for (const [name, line] of refused) {
    it(`refuses ${name} with ERR_POLICY_DENIED`, async () => {
      await assert.rejects(fromTexts('vod/a/index.m3u8', { 'vod/a/index.m3u8': hls('#EXTINF:4,', line) }), (e: unknown) => {
        assert.ok(e instanceof PublishError)
        assert.equal(e.code, 'ERR_POLICY_DENIED', e.message)
        return true
      })
    })
  }

  it('skips a key outside the directory, keeps one inside', async () => {
    const listing = await fromTexts('vod/a/index.m3u8', {
      'vod/a/index.m3u8': hls('#EXT-X-KEY:METHOD=AES-128,URI="../keys/k.bin"', '#EXT-X-KEY:METHOD=AES-128,URI="k2.bin"', '#EXTINF:4,', 's.ts'),
    })
    assert.deepEqual(rels(listing), ['index.m3u8', 'k2.bin', 's.ts'])
    assert.deepEqual(listing.skipped, [{ uri: `${ORIGIN}/vod/keys/k.bin`, reason: `outside the package directory ${ORIGIN}/vod/a/` }])
  })

  it('includes an absolute URL of the same origin under the directory, keeping its own query (a signed URL)', async () => {
    const listing = await fromTexts('vod/index.m3u8', { 'vod/index.m3u8': hls('#EXTINF:4,', `${ORIGIN}/vod/s.ts?token=x`, '#EXTINF:4,', 's.ts') })
    assert.deepEqual(listing.files.map(({ body: _, ...file }) => file), [
      { rel: 'index.m3u8', path: 'vod/index.m3u8' },
      { rel: 's.ts', path: 'vod/s.ts', query: '?token=x' },
    ])
  })

  it('reads each playlist once, even when playlists name each other', async () => {
    let reads = 0
    const texts: Record<string, string> = {
      'v/master.m3u8': hls('#EXT-X-STREAM-INF:BANDWIDTH=1', 'a.m3u8', '#EXT-X-STREAM-INF:BANDWIDTH=2', 'a.m3u8'),
      'v/a.m3u8': hls('#EXT-X-STREAM-INF:BANDWIDTH=1', 'master.m3u8', '#EXTINF:4,', 's.ts'),
    }
    const listing = await enumeratePackage(ORIGIN, 'v/master.m3u8', async (path) => {
      reads++
      return Buffer.from(texts[path]!)
    })
    assert.deepEqual(rels(listing), ['a.m3u8', 'master.m3u8', 's.ts'])
    assert.equal(reads, 2)
  })

  const invalid: Array<[name: string, manifest: string, text: string]> = [
    ['a playlist without #EXTM3U', 'v/x.m3u8', 'seg.ts\n'],
    ['an HTML page named .m3u8', 'v/x.m3u8', '<html><body>Not here</body></html>'],
    ['a live (dynamic) MPD', 'v/x.mpd', '<MPD type="dynamic"><Period/></MPD>'],
    ['malformed XML', 'v/x.mpd', '<MPD><Period></MPD>'],
    ['an XML document that is no MPD', 'v/x.mpd', '<html/>'],
    ['a template in a period of unknown duration', 'v/x.mpd', '<MPD><Period><AdaptationSet><SegmentTemplate media="$Number$.m4s" duration="2"/><Representation id="a"/></AdaptationSet></Period></MPD>'],
    ['an unknown template identifier', 'v/x.mpd', '<MPD mediaPresentationDuration="PT4S"><Period><AdaptationSet><SegmentTemplate media="$Foo$.m4s" duration="2"/><Representation id="a"/></AdaptationSet></Period></MPD>'],
  ]
  for (const [name, manifest, text] of invalid) {
    it(`refuses ${name} with ERR_REQUEST_INVALID`, async () => {
      await assert.rejects(fromTexts(manifest, { [manifest]: text }), (e: unknown) => {
        assert.ok(e instanceof PublishError)
        assert.equal(e.code, 'ERR_REQUEST_INVALID', e.message)
        assert.match(e.message, new RegExp(`${ORIGIN}/${manifest}`))
        return true
      })
    })
  }
})

describe('DASH template helpers', () => {
  const fills: Array<[template: string, expected: string]> = [
    ['$RepresentationID$/seg-$Number%05d$.m4s', 'v1/seg-00042.m4s'],
    ['$Bandwidth$/$Time$.m4s', '800000/90000.m4s'],
    ['price$$-$Number$.m4s', 'price$-42.m4s'],
    ['$Number%03d$', '042'],
    ['plain.mp4', 'plain.mp4'],
  ]
  for (const [template, expected] of fills) {
    it(`fill ${template} → ${expected}`, () => {
      assert.equal(fill(template, { RepresentationID: 'v1', Number: '42', Bandwidth: '800000', Time: '90000' }), expected)
    })
  }
  it('fill refuses an identifier it has no value for', () => assert.throws(() => fill('$Time$.m4s', { Number: '1' }), /\$Time\$ cannot be filled/))

  const durations: Array<[text: string | undefined, expected: number | undefined]> = [
    ['PT10S', 10],
    ['PT0H0M12.000S', 12],
    ['PT1H2M3.5S', 3723.5],
    ['P1DT1S', 86_401],
    ['PT0S', 0],
    [undefined, undefined],
    ['ten seconds', undefined],
  ]
  for (const [text, expected] of durations) it(`seconds(${text}) = ${expected}`, () => assert.equal(seconds(text), expected))
})
