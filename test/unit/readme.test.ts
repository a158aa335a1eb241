import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { settings } from '../../src/config/schema.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

it('the README documents every setting, by variable and file key, and no other', () => {
  const documented = [...readme.matchAll(/^\| (`APUBI_[A-Z0-9_]+`|\(file only\)) \[(\w+)\] \|/gm)].map((m) => `${m[1]} [${m[2]}]`)
  const expected = Object.entries(settings).map(([key, s]) => `${s.env === null ? '(file only)' : `\`${s.env}\``} [${key}]`)
  assert.deepEqual(documented.sort(), expected.sort())
})

it('.ci/run runs the README test command', () => {
  const command = /## Tests\n\n```sh\n(.+)\n```/.exec(readme)?.[1]
  assert.equal(command, 'npm test')
  assert.match(readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8'), /^npm test$/m)
})
