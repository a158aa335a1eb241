import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { enumeratePackage, manifestFormat, readManifest } from '../../src/packages/index.js'
import { planPackage } from '../../src/transfer/package-plan.js'

const ORIGIN = 'http://origin.test'
const hls = (...lines: string[]) => ['#EXTM3U', ...lines].join('\n')

/** The files of a package held in memory (backend path → text), relative paths sorted. */
async function filesOf(manifest: string, texts: Record<string, string>): Promise<string[]> {
  const { files } = await enumeratePackage(ORIGIN, manifest, async (path) => Buffer.from(texts[path] ?? assert.fail(`read of ${path}`)))
  return files.map((f) => f.rel).sort()
}

describe('manifest references a packaging engineer relies on', () => {
  it('HLS EXT-X-PRELOAD-HINT and EXT-X-PART name files; EXT-X-RENDITION-REPORT names a playlist, read too', async () => {
    const texts = {
      'p/a/prog.m3u8': hls(
        '#EXT-X-MAP:URI="init.mp4"',
        '#EXT-X-PART:DURATION=0.5,URI="seg0.0.m4s"',
        '#EXTINF:1,',
        'seg0.m4s',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg1.0.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../b/prog.m3u8",LAST-MSN=0',
      ),
      'p/b/prog.m3u8': hls('#EXTINF:1,', 'seg0.m4s', '#EXT-X-RENDITION-REPORT:URI="../a/prog.m3u8",LAST-MSN=0'),
      'p/master.m3u8': hls('#EXT-X-STREAM-INF:BANDWIDTH=1', 'a/prog.m3u8'),
    }
    assert.deepEqual(await filesOf('p/master.m3u8', texts), ['a/init.mp4', 'a/prog.m3u8', 'a/seg0.0.m4s', 'a/seg0.m4s', 'a/seg1.0.m4s', 'b/prog.m3u8', 'b/seg0.m4s', 'master.m3u8'])
  })

  it('DASH $SubNumber$: each of a segment\'s S@k sub-segments is a file', async () => {
    const mpd = `<MPD type="static" mediaPresentationDuration="PT4S"><Period><AdaptationSet>
      <SegmentTemplate timescale="1" media="s-$Number$-$SubNumber$.m4s" initialization="i.m4s"><SegmentTimeline><S t="0" d="2" r="1" k="3"/></SegmentTimeline></SegmentTemplate>
      <Representation id="v"/></AdaptationSet></Period></MPD>`
    assert.deepEqual(await filesOf('p/m.mpd', { 'p/m.mpd': mpd }), ['i.m4s', 'm.mpd', 's-1-1.m4s', 's-1-2.m4s', 's-1-3.m4s', 's-2-1.m4s', 's-2-2.m4s', 's-2-3.m4s'])
  })

  it('DASH: every BaseURL of a level is followed, not only the first', async () => {
    const mpd = `<MPD type="static" mediaPresentationDuration="PT2S"><Period><AdaptationSet>
      <Representation id="v"><BaseURL>primary/</BaseURL><BaseURL>backup/</BaseURL><SegmentList><Initialization sourceURL="init.mp4"/><SegmentURL media="s1.m4s"/></SegmentList></Representation>
      </AdaptationSet></Period></MPD>`
    assert.deepEqual(await filesOf('p/m.mpd', { 'p/m.mpd': mpd }), ['backup/init.mp4', 'backup/s1.m4s', 'm.mpd', 'primary/init.mp4', 'primary/s1.m4s'])
  })
})

describe('manifests are told by their content', () => {
  const cases: Array<[text: string, format: ReturnType<typeof manifestFormat>]> = [
    ['#EXTM3U\n#EXTINF:1,\ns.ts\n', 'hls'],
    ['\uFEFF#EXTM3U\r\n', 'hls'],
    ['<?xml version="1.0" encoding="utf-8"?>\n<!-- made by ffmpeg -->\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">', 'dash'],
    ['<mpd:MPD xmlns:mpd="urn:mpeg:dash:schema:mpd:2011"/>', 'dash'],
    ['#EXTM3U8 not quite', undefined],
    ['\x00\x00\x00\x18ftypiso6', undefined],
    ['<html><body>404</body></html>', undefined],
  ]
  for (const [text, format] of cases) it(`${JSON.stringify(text.slice(0, 24))} is ${format ?? 'no manifest'}`, () => assert.equal(manifestFormat(text), format))

  it('an HLS master names renditions and no duration; a media playlist sums its EXTINF', () => {
    const master = readManifest(hls('#EXT-X-STREAM-INF:BANDWIDTH=1', 'a.m3u8'), new URL(`${ORIGIN}/m.m3u8`))
    assert.deepEqual([master.master, master.renditions, master.durationSeconds], [true, 0, undefined])
    const media = readManifest(hls('#EXTINF:1.5,', 'a.ts', '#EXTINF:2.25,', 'b.ts'), new URL(`${ORIGIN}/a.m3u8`))
    assert.deepEqual([media.master, media.renditions, media.durationSeconds], [false, 1, 3.75])
  })
})

describe('the publishing order', () => {
  const item = (rel: string, text?: string) => ({ rel, size: text?.length ?? 100, ...(text !== undefined && { body: Buffer.from(text) }) })
  const tiersOf = async (items: ReturnType<typeof item>[], extensions = ['m3u8', 'mpd']) =>
    (await planPackage(items, extensions, async () => assert.fail('a manifest is read once, with the listing'), new AbortController().signal)).tiers.map((tier) => tier.map((i) => i.rel))

  it('files first, media playlists next, the master last, whatever the listing order', async () => {
    const items = [
      item('master.m3u8', hls('#EXT-X-STREAM-INF:BANDWIDTH=1', 'a/prog.m3u8', '#EXT-X-I-FRAME-STREAM-INF:URI="a/iframes.m3u8"')),
      item('a/prog.m3u8', hls('#EXTINF:1,', 's.ts', '#EXT-X-RENDITION-REPORT:URI="../b/prog.m3u8"')),
      item('a/iframes.m3u8', hls('#EXT-X-BYTERANGE:10@0', '#EXTINF:1,', 's.ts')),
      item('a/s.ts'),
      item('b/prog.m3u8', hls('#EXTINF:1,', 's.ts', '#EXT-X-RENDITION-REPORT:URI="../a/prog.m3u8"')),
      item('b/s.ts'),
    ]
    assert.deepEqual(await tiersOf(items), [['a/s.ts', 'b/s.ts'], ['a/prog.m3u8', 'a/iframes.m3u8', 'b/prog.m3u8'], ['master.m3u8']])
  })

  it('a file with a manifest extension but other content is an ordinary file; no extension configured: no order at all', async () => {
    const items = [item('notes.m3u8', 'just text'), item('index.m3u8', hls('#EXTINF:1,', 's.ts')), item('s.ts')]
    assert.deepEqual(await tiersOf(items), [['notes.m3u8', 's.ts'], ['index.m3u8']])
    assert.deepEqual(await tiersOf(items, []), [['notes.m3u8', 'index.m3u8', 's.ts']])
  })
})
