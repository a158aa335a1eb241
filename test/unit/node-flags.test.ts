// The server runs with V8's memory reducer off (docs/performance.md, "Garbage collection"): the
// `apubi` command, `npm start` and the tests' servers must all say so, or the bench measures a server
// operators do not run.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { SERVER_NODE_FLAGS } from '../servers/apubi-server.js'

const root = new URL('../../', import.meta.url)

it('the apubi command, npm start and the test servers run node with the same flags', () => {
  const flags = SERVER_NODE_FLAGS.join(' ')
  assert.equal(readFileSync(new URL('src/cli/index.ts', root), 'utf8').split('\n')[0], `#!/usr/bin/env -S node ${flags}`)
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: { start: string } }
  assert.equal(pkg.scripts.start, `node ${flags} dist/cli/index.js serve`)
})
