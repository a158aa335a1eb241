// retryDelayMs: exponential growth from the base, a cap, and "equal jitter" (half fixed, half random),
// with the random source injected so every case is exact.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { retryDelayMs } from '../../src/tasks/retry.js'

const lowest = () => 0
const middle = () => 0.5
const highest = () => 1

describe('retryDelayMs', () => {
  const cases: Array<[what: string, attempt: number, baseMs: number, maxMs: number, random: () => number, expected: number]> = [
    ['attempt 1 waits the base, at least half of it', 1, 1_000, 60_000, lowest, 500],
    ['attempt 1 waits the base, at most all of it', 1, 1_000, 60_000, highest, 1_000],
    ['attempt 1, middle of the jitter', 1, 1_000, 60_000, middle, 750],
    ['attempt 2 doubles', 2, 1_000, 60_000, highest, 2_000],
    ['attempt 3 doubles again', 3, 1_000, 60_000, highest, 4_000],
    ['attempt 3, lowest jitter', 3, 1_000, 60_000, lowest, 2_000],
    ['attempt 6 still grows below the cap', 6, 1_000, 60_000, highest, 32_000],
    ['attempt 7 reaches the cap', 7, 1_000, 60_000, highest, 60_000],
    ['past the cap, the cap is the most', 30, 1_000, 60_000, highest, 60_000],
    ['past the cap, half the cap is the least', 30, 1_000, 60_000, lowest, 30_000],
    ['a huge attempt does not overflow', 5_000, 2_000, 300_000, middle, 225_000],
    ['attempt 0 (never claimed) counts as attempt 1', 0, 1_000, 60_000, highest, 1_000],
    ['a base above the cap is capped', 1, 10_000, 5_000, highest, 5_000],
    ['rounded to whole milliseconds', 1, 3, 60_000, middle, 2],
  ]
  for (const [what, attempt, baseMs, maxMs, random, expected] of cases) {
    it(`${what}: (${attempt}, ${baseMs}, ${maxMs}) → ${expected}`, () => {
      assert.equal(retryDelayMs(attempt, baseMs, maxMs, random), expected)
    })
  }

  it('stays within [half, all] of the capped exponential delay for any random in [0, 1)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 100_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxMs, r) => {
          const delay = retryDelayMs(attempt, baseMs, maxMs, () => r)
          const exponential = Math.min(maxMs, baseMs * 2 ** (attempt - 1))
          assert.ok(Number.isInteger(delay), `${delay} is a whole number of ms`)
          assert.ok(delay >= Math.floor(exponential / 2) && delay <= exponential, `${delay} in [${exponential / 2}, ${exponential}]`)
        },
      ),
    )
  })

  it('never shrinks from one attempt to the next for the same random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxMs, r) => {
          assert.ok(retryDelayMs(attempt + 1, baseMs, maxMs, () => r) >= retryDelayMs(attempt, baseMs, maxMs, () => r))
        },
      ),
    )
  })
})
