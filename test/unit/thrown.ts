import assert from 'node:assert/strict'
import { isPublishError, type Code } from '../../src/errors.js'

/** The message of the PublishError `run` throws, which must carry `code`. */
export function thrownMessage(code: Code, run: () => unknown): string {
  try {
    run()
  } catch (e) {
    assert.ok(isPublishError(e, code), `expected ${code}, got ${String(e)}`)
    return e.message
  }
  assert.fail(`expected ${code}, nothing was thrown`)
}
