// Which origins a target is published to, and the config that names them.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.js'
import { originRecord, originsOf } from '../../src/transfer/index.js'
import { thrownMessage } from './thrown.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const mirrors = [
  { base: 'sftp://a.example/cdn/', origins: ['sftp://a.example/cdn/', 's3://backup/cdn/'] },
  { base: 'sftp://a.example/cdn/live/', origins: ['sftp://a.example/cdn/live/', 'ftp://b.example/live/', 's3://backup/live/'] },
]

describe('mirrored origins', () => {
  it('maps a target under a base to each origin, the rest of the path kept', () => {
    assert.deepEqual(originsOf('sftp://a.example/cdn/show/master.m3u8', mirrors), [
      { url: 'sftp://a.example/cdn/show/master.m3u8', base: 'sftp://a.example/cdn/' },
      { url: 's3://backup/cdn/show/master.m3u8', base: 's3://backup/cdn/' },
    ])
  })

  it('takes the longest base that matches', () => {
    assert.deepEqual(originsOf('sftp://a.example/cdn/live/ch1/', mirrors).map((o) => o.url), ['sftp://a.example/cdn/live/ch1/', 'ftp://b.example/live/ch1/', 's3://backup/live/ch1/'])
  })

  it('leaves a target under no base to itself', () => {
    assert.deepEqual(originsOf('sftp://other.example/cdn/x.ts', mirrors), [{ url: 'sftp://other.example/cdn/x.ts', base: 'sftp://other.example/cdn/x.ts' }])
    assert.deepEqual(originsOf('sftp://a.example/cdnx/x.ts', mirrors).length, 1)
  })

  it('records an origin as done apart from its files', () => {
    assert.equal(originRecord(0), '@1')
    assert.equal(originRecord(1, 'video/seg.ts'), '@2/video/seg.ts')
  })

  it('refuses a mirror without a folder URL or with one origin, saying which', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'apubi-mirrors-')), 'config.json')
    writeFileSync(file, JSON.stringify({ mirrors: [{ base: 'sftp://a.example/cdn', origins: ['s3://backup/cdn/'] }] }))
    const message = thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_CONFIG: file }))
    assert.match(message, /mirrors\): 0\.base must be an absolute URL ending with \/; 0\.origins name at least two origins/)
  })
})
