import assert from 'node:assert/strict'
import { it } from 'node:test'
import { setImmediate } from 'node:timers/promises'
import { forEachLimited } from '../../src/transfer/job.js'

// A directory publish runs its files through forEachLimited: whatever stops it, a file still in
// flight must settle (land, or remove its temporary file) before the task can end.

/** Two lanes over three items: 'slow' stays in flight until the test lets it end; 'quick' calls `onQuick`. */
function twoLanes(signal: AbortSignal, onQuick: () => void) {
  let letSlowEnd!: () => void
  const slowEnded = new Promise<void>((resolve) => (letSlowEnd = resolve))
  const started: string[] = []
  let settled = false
  const running = forEachLimited(['slow', 'quick', 'never'], 2, signal, async (item) => {
    started.push(item)
    if (item === 'slow') return slowEnded
    onQuick()
  }).finally(() => (settled = true))
  running.catch(() => {})
  return { running, started, letSlowEnd, isSettled: () => settled }
}

it('a failure rejects only once the items in flight have settled, and starts no more', async () => {
  const lanes = twoLanes(new AbortController().signal, () => {
    throw new Error('quick failed')
  })
  await setImmediate()
  assert.equal(lanes.isSettled(), false, 'rejected while an item was still in flight')
  lanes.letSlowEnd()
  await assert.rejects(lanes.running, /quick failed/)
  assert.deepEqual(lanes.started, ['slow', 'quick'])
})

it('an abort rejects with its reason only once the items in flight have settled, and starts no more', async () => {
  const abort = new AbortController()
  const lanes = twoLanes(abort.signal, () => abort.abort(new Error('cancelled')))
  await setImmediate()
  assert.equal(lanes.isSettled(), false, 'rejected while an item was still in flight')
  lanes.letSlowEnd()
  await assert.rejects(lanes.running, /cancelled/)
  assert.deepEqual(lanes.started, ['slow', 'quick'])
})
