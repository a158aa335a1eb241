// Every line the logger took must reach stdout when the process ends, however it ends, and even when
// the reader of stdout is slow: what an asynchronous destination without a flush at exit loses
// (tried: 1 line of 20,000 arrived).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'

const fixture = new URL('../fixtures/log-then-end.ts', import.meta.url).pathname
// Lines of ~300 bytes: 1.5 MB, far more than a pipe holds (64 KiB), so most is unread at the end.
const LINES = 5_000

/** Runs the fixture; reads its stdout only after it has stopped writing to a full pipe for a while. */
async function logThenEnd(end: string): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, String(LINES), end], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  child.stdout.pause()
  await sleep(300)
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stdout.resume()
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  return { code, lines: out.split('\n').filter(Boolean), stderr }
}

describe('logging at the end of the process', () => {
  for (const [end, code] of [['exit', 0], ['throw', 1], ['reject', 1]] as const) {
    it(`writes every line before the process ends by ${end}`, async () => {
      const result = await logThenEnd(end)
      assert.equal(result.code, code, result.stderr)
      assert.equal(result.lines.length, LINES)
      assert.deepEqual(JSON.parse(result.lines.at(-1)!).i, LINES - 1)
      if (end !== 'exit') assert.match(result.stderr, /fatal: (thrown|rejected)/)
    })
  }
})
