import assert from 'node:assert/strict'
import type { EventLoopUtilization } from 'node:perf_hooks'
import { it } from 'node:test'
import { GROW_EVERY_MS, IDLE_BELOW, Lanes } from '../../src/transfer/lanes.js'

// The rule by which a multi-file copy opens more lanes (issue 18, "Real round trips"), with a clock
// the test moves: time, and how busy the event loop was meanwhile.
function clock() {
  let now = 0
  let active = 0
  return {
    now: () => now,
    eventLoopUtilization(since?: EventLoopUtilization): EventLoopUtilization {
      const total = { idle: now - active, active, utilization: now === 0 ? 0 : active / now }
      if (!since) return total
      const idle = total.idle - since.idle
      const busy = total.active - since.active
      return { idle, active: busy, utilization: idle + busy === 0 ? 0 : busy / (idle + busy) }
    },
    /** `ms` pass, `busyShare` of them with the event loop busy. */
    pass(ms: number, busyShare: number) {
      now += ms
      active += ms * busyShare
    },
  }
}

it('starts at APUBI_PARALLEL_FILES, within the cap (half of it when both sides are one host)', () => {
  const options = { parallelFiles: 4, connectionsPerHost: 8 }
  assert.deepEqual([new Lanes(options, false, clock()).initial, new Lanes(options, false, clock()).max], [4, 8])
  assert.deepEqual([new Lanes(options, true, clock()).initial, new Lanes(options, true, clock()).max], [4, 4])
  assert.deepEqual([new Lanes({ parallelFiles: 16, connectionsPerHost: 6 }, false, clock()).initial, new Lanes({ parallelFiles: 16, connectionsPerHost: 6 }, true, clock()).max], [6, 3])
})

it(`grows by one at most every ${GROW_EVERY_MS} ms while the event loop was idle, never past the cap`, () => {
  const time = clock()
  const lanes = new Lanes({ parallelFiles: 2, connectionsPerHost: 4 }, false, time)
  time.pass(GROW_EVERY_MS - 1, 0.1)
  assert.equal(lanes.grow(2), false, 'too soon')
  time.pass(1, 0.1)
  assert.equal(lanes.grow(2), true, 'waiting for round trips')
  time.pass(GROW_EVERY_MS, IDLE_BELOW + 0.1)
  assert.equal(lanes.grow(3), false, 'busy: CPU is the limit')
  time.pass(GROW_EVERY_MS, 0.2)
  assert.equal(lanes.grow(3), true)
  time.pass(GROW_EVERY_MS, 0)
  assert.equal(lanes.grow(4), false, 'at the cap')
})

it('does not grow while a caller waits for a connection slot of any host', () => {
  const time = clock()
  let waiting = 1
  const hosts = {
    acquire: async () => () => {},
    inUse: () => [{ host: 'sftp://origin:22', connections: 4, waiting }],
  }
  const lanes = new Lanes({ parallelFiles: 2, connectionsPerHost: 4, backends: { hosts } }, false, time)
  time.pass(GROW_EVERY_MS, 0)
  assert.equal(lanes.grow(2), false, 'another task waits for a slot')
  waiting = 0
  time.pass(GROW_EVERY_MS, 0)
  assert.equal(lanes.grow(2), true, 'nobody waits')
})
