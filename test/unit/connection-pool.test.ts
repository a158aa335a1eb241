import assert from 'node:assert/strict'
import { it } from 'node:test'
import { setImmediate } from 'node:timers/promises'
import { ConnectionPool } from '../../src/backends/connection-pool.js'

// The pool's own bookkeeping, with connections that are plain names: what it hands out, keeps and
// closes. The backends' suites run it against real servers.
const never = new AbortController().signal

/** A pool whose first connection opens at once and whose later ones open when the test says so. */
function poolOpeningOnDemand() {
  const discarded: string[] = []
  const pending: Array<(name: string) => void> = []
  let opened = 0
  const pool = new ConnectionPool<string>({
    connect: () => (opened++ === 0 ? Promise.resolve('first') : new Promise<string>((resolve) => pending.push(resolve))),
    isOpen: () => true,
    discard: (name) => void discarded.push(name),
    idleMs: 60_000,
    maxIdle: 4,
  })
  return { pool, discarded, finishOpening: (name: string) => pending.shift()?.(name) }
}

it('close waits for a connection still being opened, and closes it once it is open', async () => {
  const { pool, discarded, finishOpening } = poolOpeningOnDemand()
  const first = await pool.take(never)
  // A second user waits; the connection opened for it goes on after the first one came back to it.
  const second = pool.take(never)
  pool.giveBack(first)
  assert.equal(await second, 'first')

  let closed = false
  const closing = pool.close().then(() => (closed = true))
  await setImmediate()
  assert.equal(closed, false, 'close resolved while a connection (and its host slot) was still being opened')
  finishOpening('late')
  await closing
  assert.deepEqual(discarded.sort(), ['first', 'late'])
})

it('a connection opened after close is never handed out', async () => {
  const { pool, discarded, finishOpening } = poolOpeningOnDemand()
  await pool.take(never)
  const waiting = pool.take(never)
  const closing = pool.close()
  finishOpening('late')
  await assert.rejects(waiting)
  await closing
  assert.deepEqual(discarded.sort(), ['first', 'late'])
})

it('opens no more connections than callers wait for, while the first ones are being opened', async () => {
  const opened: Array<(name: string) => void> = []
  const pool = new ConnectionPool<string>({
    connect: () => new Promise<string>((resolve) => opened.push(resolve)),
    isOpen: () => true,
    discard: () => {},
    idleMs: 60_000,
    maxIdle: 4,
  })
  // Four callers, then a fifth once the first of them has handed its connection back: five opened
  // before, one each time a caller found none idle (issue 18: 13 connections for 4 parallel files).
  const takes = Array.from({ length: 4 }, () => pool.take(never))
  assert.equal(opened.length, 4)
  opened.shift()!('a')
  const a = await takes[0]!
  pool.giveBack(a) // to the second caller, whose connection is still being opened
  assert.equal(await takes[1], 'a')
  const fifth = pool.take(never) // three being opened, two callers waiting: no new one
  assert.equal(opened.length, 3)
  for (const name of ['b', 'c', 'd']) opened.shift()!(name)
  assert.deepEqual(await Promise.all([takes[2], takes[3], fifth]), ['b', 'c', 'd'])
  await pool.close()
})

it('a connection that fails to open fails the caller no other opening serves', async () => {
  const refused = new Error('login refused')
  const pool = new ConnectionPool<string>({
    connect: () => Promise.reject(refused),
    isOpen: () => true,
    discard: () => {},
    idleMs: 60_000,
    maxIdle: 4,
  })
  await assert.rejects(Promise.all([pool.take(never), pool.take(never)]), (e) => e === refused)
  await pool.close()
})
