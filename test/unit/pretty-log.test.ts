// The terminal's log format: a JSON line in, one readable line out.
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { createLogger } from '../../src/observability/logger.js'
import { formatLine } from '../../src/observability/pretty.js'

const at = Date.UTC(2025, 0, 31, 8, 30, 15, 123)

describe('pretty log lines', () => {
  it('shows time, level, message, then the fields', () => {
    const line = JSON.stringify({ level: 'info', time: at, pid: 1, hostname: 'h', service: 'apubi', msg: 'soap request', operation: 'LoadAsset', taskId: 'a-b', outcome: 'ok', ms: 1.5 })
    assert.equal(formatLine(line), '08:30:15.123 INFO  soap request operation=LoadAsset taskId=a-b outcome=ok ms=1.5\n')
  })

  it('quotes values with spaces and shows objects as JSON', () => {
    const line = JSON.stringify({ level: 'warn', time: at, msg: 'task failed', error: 'stat ftp://u:***@h/a: gone', file: { rel: 'a b.ts' } })
    assert.equal(formatLine(line), '08:30:15.123 WARN  task failed error="stat ftp://u:***@h/a: gone" file={"rel":"a b.ts"}\n')
  })

  it("puts an error's message in the line and its stack below, indented", () => {
    const line = JSON.stringify({ level: 'error', time: at, msg: 'request failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (a.js:1:1)\n    at g (b.js:2:2)' } })
    assert.equal(formatLine(line), '08:30:15.123 ERROR request failed err="boom"\n    at f (a.js:1:1)\n    at g (b.js:2:2)\n')
  })

  it('colours the level for a terminal, and passes a line that is not JSON unchanged', () => {
    assert.equal(formatLine(JSON.stringify({ level: 'error', time: at, msg: 'x' }), true), '08:30:15.123 \u001b[31mERROR\u001b[0m x\n')
    assert.equal(formatLine('not json'), 'not json\n')
  })

  it('is what the logger writes with the pretty format, redacted', () => {
    let out = ''
    const sink = new Writable({ write: (chunk, _, done) => ((out += chunk), done()) })
    createLogger('info', sink, ['hunter22'], 'pretty').info({ url: 'ftp://u:pw@h/a', note: 'hunter22 here' }, 'hello')
    assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} INFO  hello url=ftp:\/\/u:\*\*\*@h\/a note="\*\*\* here"\n$/)
  })
})
