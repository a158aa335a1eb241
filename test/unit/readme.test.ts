import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { settings } from '../../src/config/schema.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

it('the README documents every setting, by variable and file key, and no other', () => {
  for (const [key, setting] of Object.entries(settings)) {
    assert.match(readme, new RegExp(`\\| \`${setting.env}\` \\[${key}\\] \\|`), `${setting.env} is missing from the README`)
  }
  const documented = [...readme.matchAll(/^\| `(APUBI_[A-Z_]+)` \[/gm)].map((m) => m[1])
  assert.deepEqual(documented.sort(), Object.values(settings).map((s) => s.env).sort())
})

it('.ci/run runs the README test command', () => {
  const command = /## Tests\n\n```sh\n(.+)\n```/.exec(readme)?.[1]
  assert.equal(command, 'npm test')
  assert.match(readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8'), /^npm test$/m)
})
