// deploy/apubi.service: systemd accepts it, and it asks for what the issue and docs/operations.md say
// (a dedicated user, a read-only system with the data folder writable, restart on failure, time to
// hand tasks back on stop, the settings from an environment file).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { settings } from '../../src/config/schema.js'

const unitText = readFileSync(new URL('../../deploy/apubi.service', import.meta.url), 'utf8')
const SYSTEMD_MISSING = 'systemd-analyze is not installed: apt-get install -y systemd (.ci/run does)'
const INSTALLED_APUBI = '/usr/local/bin/apubi'

/** The [Service] section's values by key (a key may repeat). */
function serviceSection(text: string): Map<string, string[]> {
  const section = /^\[Service\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(text)?.[1] ?? ''
  const values = new Map<string, string[]>()
  for (const [, key, value] of section.matchAll(/^(\w+)=(.*)$/gm)) values.set(key!, [...(values.get(key!) ?? []), value!])
  return values
}

/** systemd's time span, in milliseconds: `40`, `40s`, `1min 30s`, `500ms`. */
function timeSpanMs(span: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 }
  return [...span.matchAll(/(\d+)\s*([a-z]*)/g)].reduce((sum, [, n, unit]) => sum + Number(n) * units[unit || 's']!, 0)
}

describe('deploy/apubi.service', () => {
  const service = serviceSection(unitText)
  const one = (key: string) => {
    const values = service.get(key)
    assert.ok(values, `${key}= is missing`)
    return values.at(-1)!
  }

  it('passes systemd-analyze verify', (t: TestContext) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      console.warn(`\n*** SKIPPED ${t.name}: ${SYSTEMD_MISSING} ***\n`)
      return t.skip(SYSTEMD_MISSING)
    }
    // verify also checks that ExecStart's program exists: the unit names where `npm install -g`
    // puts apubi, which this machine need not have; node itself stands in for it.
    assert.equal(one('ExecStart'), `${INSTALLED_APUBI} serve`)
    const dir = mkdtempSync(join(tmpdir(), 'apubi-unit-'))
    try {
      const unit = join(dir, 'apubi.service')
      writeFileSync(unit, unitText.replace(`ExecStart=${INSTALLED_APUBI} `, `ExecStart=${process.execPath} `))
      const result = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' })
      assert.equal(result.status, 0, result.stderr)
      assert.equal(result.stderr.trim(), '', 'no warning either')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  it('runs as a dedicated user, on a read-only system with only its data folder writable', () => {
    assert.equal(one('User'), 'apubi')
    assert.equal(one('Group'), 'apubi')
    assert.equal(one('ProtectSystem'), 'strict')
    assert.equal(one('StateDirectory'), 'apubi')
    assert.ok(service.get('Environment')?.includes('APUBI_DATA_DIR=/var/lib/apubi'), 'the data folder is the state directory')
    assert.equal(one('NoNewPrivileges'), 'yes')
    assert.equal(one('PrivateTmp'), 'yes')
  })

  it('restarts on failure, takes its settings from an environment file, and stops after the shutdown grace', () => {
    assert.equal(one('Restart'), 'on-failure')
    assert.match(one('EnvironmentFile'), /^-?\/etc\/apubi\/apubi\.env$/)
    const grace = settings.shutdownGraceMs.schema.parse(undefined) as number
    assert.ok(timeSpanMs(one('TimeoutStopSec')) > grace + 5_000, `TimeoutStopSec leaves the ${grace} ms grace and a margin`)
  })
})
