// Which public URLs a load or a purge makes stale, for a destination base (src/invalidate/plan.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { afterLoad, afterPurge, below } from '../../src/invalidate/plan.js'

const cdn = 'https://cdn.example.com/vod/'

describe('invalidation plan', () => {
  it('finds a target below its base, whatever credentials either URL holds', () => {
    assert.equal(below('sftp://origin.example/data/cdn/', 'sftp://user:secret@ORIGIN.example/data/cdn/Folder_01/a%20b.mp4'), 'Folder_01/a%20b.mp4')
    assert.equal(below('sftp://origin.example/data/cdn/', 'sftp://origin.example:2222/data/cdn/a.mp4'), undefined)
    assert.equal(below('sftp://origin.example/data/cdn/', 'sftp://origin.example/data/cdnx/a.mp4'), undefined)
    assert.equal(below('ftp://origin.example/data/cdn/', 'sftp://origin.example/data/cdn/a.mp4'), undefined)
  })

  const loads: Array<[string, string, string[], boolean, string[]]> = [
    ['a file target: that file', 'Folder_01/movie.mp4', ['movie.mp4'], false, [`${cdn}Folder_01/movie.mp4`]],
    ['a package: its manifests only', 'show/', ['master.m3u8', 'v0/index.m3u8', 'v0/seg1.ts', 'v0/seg2.ts'], true, [`${cdn}show/master.m3u8`, `${cdn}show/v0/index.m3u8`]],
    ['a DASH package: its MPD', 'dash/', ['manifest.mpd', 'chunk-1.m4s'], true, [`${cdn}dash/manifest.mpd`]],
    ['plain files: every one, each segment encoded', 'docs/', ['a b.txt', 'x/#1.txt'], true, [`${cdn}docs/a%20b.txt`, `${cdn}docs/x/%231.txt`]],
  ]
  for (const [name, rel, files, isDirectory, expected] of loads) {
    it(`after a load, ${name}`, () => assert.deepEqual(afterLoad(cdn, rel, files, isDirectory), expected))
  }

  it('after a purge: a file by its URL; a directory by its prefix and each file it held', () => {
    assert.deepEqual(afterPurge(cdn, 'a.mp4', false, []), { urls: [`${cdn}a.mp4`], prefixes: [] })
    assert.deepEqual(afterPurge(cdn, 'show/', true, ['master.m3u8', 'v0/seg1.ts']), { urls: [`${cdn}show/master.m3u8`, `${cdn}show/v0/seg1.ts`], prefixes: [`${cdn}show/`] })
  })
})
