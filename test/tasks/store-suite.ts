// The TaskStore contract (src/tasks/store.ts) as one suite that every store engine passes: SQLite
// now, PostgreSQL later. Only the TaskStore interface is used here. Every time is passed explicitly
// and moved by the test instead of sleeping: leases "expire" because we say it is later.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import type { TaskStore } from '../../src/tasks/store.js'
import { publicStatus, type Claimed, type NewTask, type Outcome } from '../../src/tasks/types.js'

export interface OpenedStore {
  readonly store: TaskStore
  /** Closes the store and removes what `open` made (a file, a schema). */
  close(): Promise<void>
}

/** Any fixed instant: times below are offsets from it. */
const T0 = Date.UTC(2025, 0, 1)
const LEASE_MS = 1_000

const succeeded = (finalDestination: string): Outcome => ({ state: 'succeeded', finalDestination })
const failed = (message: string): Outcome => ({ state: 'failed', error: { code: 'ERR_NOT_FOUND', message } })
const retryAt = (runAt: number, message = 'connection reset'): Outcome => ({
  state: 'retry_wait',
  error: { code: 'ERR_TRANSFER', message },
  runAt,
})

/**
 * Runs the contract on a fresh store per test; `open` must give each call its own empty namespace
 * (a new file, a new schema).
 */
export function storeConformance(name: string, open: () => Promise<OpenedStore>): void {
  let keys = 0
  const newTask = (overrides: Partial<NewTask> = {}): NewTask => ({
    kind: 'load',
    source: 'ftp://user:secret@origin.example/assets/a.ts',
    destination: 'movies/a.ts',
    target: 'file:///srv/cdn/movies/a.ts',
    metadataPairs: [],
    maxAttempts: 3,
    dedupeKey: `key-${++keys}`,
    ...overrides,
  })

  /** Opens a store for one test and always closes it, even when the test fails. */
  const withStore = (test: (store: TaskStore) => Promise<void>) => async () => {
    const opened = await open()
    try {
      await test(opened.store)
    } finally {
      await opened.close()
    }
  }

  /** Submits a task and claims it; the store must hold no other due task. */
  const submitAndClaim = async (store: TaskStore, task = newTask(), worker = 'w1', now = T0): Promise<Claimed> => {
    const { id } = await store.submit(task, now)
    const claimed = await store.claim(worker, LEASE_MS, now)
    assert.equal(claimed?.task.id, id)
    return claimed
  }

  /** status(), and statusNow() where the store has it: both must answer the same. */
  const statusOf = async (store: TaskStore, id: string) => {
    const status = await store.status(id)
    if (store.statusNow) assert.deepEqual(store.statusNow(id), status, 'statusNow() answers what status() does')
    return status
  }

  describe(`TaskStore conformance: ${name}`, () => {
    describe('status', () => {
      it(
        'answers state and destinations, and undefined for an unknown id',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.deepEqual(await statusOf(store, claimed.task.id), { state: 'running', destination: claimed.task.destination })
          assert.equal(await store.finish(claimed, succeeded('final/place.ts'), T0 + 1), true)
          assert.deepEqual(await statusOf(store, claimed.task.id), { state: 'succeeded', destination: claimed.task.destination, finalDestination: 'final/place.ts' })
          assert.equal(await statusOf(store, 'no-such-task'), undefined)
        }),
      )
      it(
        'follows a task through a retry, a cancel and its deletion, however often it was read before',
        withStore(async (store) => {
          const retried = await submitAndClaim(store)
          assert.equal((await statusOf(store, retried.task.id))?.state, 'running')
          assert.equal(await store.finish(retried, retryAt(T0 + 10), T0 + 1), true)
          assert.equal((await statusOf(store, retried.task.id))?.state, 'retry_wait')
          const cancelled = await store.submit(newTask(), T0 + 2)
          assert.equal((await statusOf(store, cancelled.id))?.state, 'queued')
          assert.equal(await store.cancel(cancelled.id, { code: 'ERR_CANCELLED', message: 'by an operator' }, T0 + 3), true)
          for (let i = 0; i < 3; i++) assert.equal((await statusOf(store, cancelled.id))?.state, 'failed')
          assert.equal(await store.deleteFinishedBefore(T0 + 4), 1)
          assert.equal(await statusOf(store, cancelled.id), undefined)
        }),
      )
    })

    describe('files', () => {
      it(
        'applies the writes of one lease in the order they were made, even those not awaited (the worker records files so)',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          const file = { rel: 'a.ts', size: 1, verifiedBy: 'size' as const, resumedFrom: 0 }
          const progress = { bytesDone: 1, bytesTotal: 1, filesDone: 1, filesTotal: 1 }
          const recorded = store.recordFile(claimed, file, T0 + 1)
          const saved = store.progress(claimed, progress, T0 + 1)
          const finished = store.finish(claimed, succeeded('a.ts'), T0 + 2)
          assert.deepEqual(await Promise.all([recorded, saved, finished]), [true, true, true])
          assert.deepEqual(await store.files(claimed.task.id), [file])
          assert.equal((await store.get(claimed.task.id))?.bytesDone, 1)
        }),
      )

      it(
        'records published files under the current lease only, one row per path, in path order',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          const file = (rel: string, size = 1) => ({ rel, size, md5: 'a'.repeat(32), sha256: 'b'.repeat(64), verifiedBy: 'size' as const, resumedFrom: 0 })
          assert.equal(await store.recordFile(claimed, file('b/2.ts'), T0), true)
          assert.equal(await store.recordFile(claimed, file('a/1.ts'), T0), true)
          assert.equal(await store.recordFile(claimed, file('a/1.ts', 7), T0), true)
          assert.deepEqual(await store.files(claimed.task.id), [file('a/1.ts', 7), file('b/2.ts')])
          assert.equal(await store.requeueExpired(T0 + LEASE_MS + 1), 1)
          const newer = await store.claim('w2', LEASE_MS, T0 + LEASE_MS + 2)
          assert.ok(newer)
          assert.equal(await store.recordFile(claimed, file('c/3.ts'), T0 + LEASE_MS + 3), false, 'a stale lease records nothing')
          assert.deepEqual((await store.files(claimed.task.id)).map((f) => f.rel), ['a/1.ts', 'b/2.ts'])
        }),
      )
    })

    describe('submit', () => {
      it(
        'creates a queued task holding what was submitted',
        withStore(async (store) => {
          const task = newTask({
            metadataXml: '<Metadata><Title>A &amp; B</Title></Metadata>',
            metadataPairs: [{ key: 'Title', value: 'A & B' }],
          })
          const { id, created } = await store.submit(task, T0)
          assert.equal(created, true)
          const stored = await store.get(id)
          assert.ok(stored)
          assert.deepEqual(
            {
              id: stored.id,
              kind: stored.kind,
              state: stored.state,
              source: stored.source,
              destination: stored.destination,
              target: stored.target,
              metadataXml: stored.metadataXml,
              metadataPairs: stored.metadataPairs,
              attempts: stored.attempts,
              maxAttempts: stored.maxAttempts,
              runAt: stored.runAt,
              createdAt: stored.createdAt,
              finalDestination: stored.finalDestination,
              lastError: stored.lastError,
              finishedAt: stored.finishedAt,
            },
            {
              id,
              kind: 'load',
              state: 'queued',
              source: task.source,
              destination: task.destination,
              target: task.target,
              metadataXml: task.metadataXml,
              metadataPairs: [{ key: 'Title', value: 'A & B' }],
              attempts: 0,
              maxAttempts: 3,
              runAt: T0,
              createdAt: T0,
              finalDestination: undefined,
              lastError: undefined,
              finishedAt: undefined,
            },
          )
          assert.deepEqual(await store.errors(id), [])
        }),
      )

      it(
        'keeps a purge without source or metadata',
        withStore(async (store) => {
          const { source: _, ...purge } = newTask({ kind: 'purge' })
          const { id } = await store.submit(purge, T0)
          const stored = await store.get(id)
          assert.equal(stored?.kind, 'purge')
          assert.equal(stored.source, undefined)
          assert.equal(stored.metadataXml, undefined)
          assert.deepEqual(stored.metadataPairs, [])
        }),
      )

      it(
        'get of an unknown id is undefined',
        withStore(async (store) => {
          assert.equal(await store.get(randomUUID()), undefined)
        }),
      )

      it(
        'returns the active task for the same dedupe key, whether queued, running or waiting to retry',
        withStore(async (store) => {
          const task = newTask()
          const first = await store.submit(task, T0)
          assert.deepEqual(await store.submit(task, T0 + 1), { id: first.id, created: false })

          const claimed = await store.claim('w1', LEASE_MS, T0 + 2)
          assert.deepEqual(await store.submit(task, T0 + 3), { id: first.id, created: false })

          assert.equal(await store.finish(claimed!, retryAt(T0 + 10_000), T0 + 4), true)
          assert.deepEqual(await store.submit(task, T0 + 5), { id: first.id, created: false })
        }),
      )

      for (const [ending, outcome] of [
        ['succeeded', succeeded('movies/a.ts')],
        ['failed', failed('gone')],
      ] as const) {
        it(
          `makes a new task for the same dedupe key once the first ${ending}`,
          withStore(async (store) => {
            const task = newTask()
            const claimed = await submitAndClaim(store, task)
            assert.equal(await store.finish(claimed, outcome, T0 + 10), true)

            const second = await store.submit(task, T0 + 20)
            assert.equal(second.created, true)
            assert.notEqual(second.id, claimed.task.id)
            assert.equal((await store.get(claimed.task.id))?.state, ending)
            assert.equal((await store.get(second.id))?.state, 'queued')
          }),
        )
      }

      it(
        'makes one task of many concurrent submits with one dedupe key',
        withStore(async (store) => {
          const task = newTask()
          const results = await Promise.all(Array.from({ length: 25 }, (_, i) => store.submit(task, T0 + i)))
          assert.equal(new Set(results.map((r) => r.id)).size, 1)
          assert.equal(results.filter((r) => r.created).length, 1)
          const id = results[0]!.id
          assert.equal((await store.claim('w1', LEASE_MS, T0 + 100))?.task.id, id)
          assert.equal(await store.claim('w1', LEASE_MS, T0 + 100), undefined)
        }),
      )
    })

    describe('claim', () => {
      it(
        'takes the due task, counting an attempt, leasing it and raising the token',
        withStore(async (store) => {
          const { id } = await store.submit(newTask(), T0)
          const first = await store.claim('w1', LEASE_MS, T0 + 5)
          assert.ok(first)
          assert.equal(first.task.id, id)
          assert.equal(first.task.state, 'running')
          assert.equal(first.task.attempts, 1)
          assert.equal(first.task.leaseOwner, 'w1')
          assert.equal(first.task.leaseUntil, T0 + 5 + LEASE_MS)
          assert.equal(first.token, first.task.leaseToken)
          const stored = await store.get(id)
          assert.equal(stored?.state, 'running')
          assert.equal(stored.attempts, 1)
          assert.equal(publicStatus(stored.state), 'IN_PROGRESS')

          assert.equal(await store.release(first, T0 + 6), true)
          const second = await store.claim('w2', LEASE_MS, T0 + 7)
          assert.ok(second)
          assert.equal(second.task.leaseOwner, 'w2')
          assert.ok(second.token > first.token, `token ${second.token} must be above ${first.token}`)
        }),
      )

      it(
        'returns nothing when no task is due',
        withStore(async (store) => {
          assert.equal(await store.claim('w1', LEASE_MS, T0), undefined)
          const { id } = await store.submit(newTask(), T0 + 1_000)
          assert.equal(await store.claim('w1', LEASE_MS, T0 + 999), undefined)
          assert.equal((await store.claim('w1', LEASE_MS, T0 + 1_000))?.task.id, id)
          assert.equal(await store.claim('w1', LEASE_MS, T0 + 1_000), undefined)
        }),
      )

      it(
        'takes the task due longest ago first',
        withStore(async (store) => {
          const late = await store.submit(newTask(), T0 + 20)
          const early = await store.submit(newTask(), T0)
          const middle = await store.submit(newTask(), T0 + 10)
          const order = []
          for (let i = 0; i < 3; i++) order.push((await store.claim('w1', LEASE_MS, T0 + 100))?.task.id)
          assert.deepEqual(order, [early.id, middle.id, late.id])
        }),
      )

      it(
        'gives one task to exactly one of two racing claimers',
        withStore(async (store) => {
          const { id } = await store.submit(newTask(), T0)
          const results = await Promise.all([store.claim('w1', LEASE_MS, T0), store.claim('w2', LEASE_MS, T0)])
          const winners = results.filter((c) => c !== undefined)
          assert.equal(winners.length, 1)
          assert.equal(winners[0]?.task.id, id)
          assert.equal((await store.get(id))?.leaseOwner, winners[0].task.leaseOwner)
        }),
      )

      it(
        'gives each of several tasks to one claimer among many',
        withStore(async (store) => {
          const ids = []
          for (let i = 0; i < 5; i++) ids.push((await store.submit(newTask(), T0 + i)).id)
          const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.claim(`w${i}`, LEASE_MS, T0 + 10)))
          const won = results.flatMap((c) => (c ? [c.task.id] : []))
          assert.deepEqual([...won].sort(), [...ids].sort())
        }),
      )
    })

    describe('leases', () => {
      it(
        'renew extends the lease and progress is kept',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.renew(claimed, LEASE_MS, T0 + 900), true)
          assert.equal((await store.get(claimed.task.id))?.leaseUntil, T0 + 900 + LEASE_MS)
          assert.equal(await store.requeueExpired(T0 + LEASE_MS + 1), 0)

          const progress = { bytesDone: 512, bytesTotal: 2048, filesDone: 1, filesTotal: 4 }
          assert.equal(await store.progress(claimed, progress, T0 + 950), true)
          const stored = await store.get(claimed.task.id)
          assert.deepEqual(
            { bytesDone: stored?.bytesDone, bytesTotal: stored?.bytesTotal, filesDone: stored?.filesDone, filesTotal: stored?.filesTotal },
            progress,
          )
        }),
      )

      it(
        'refuses renew, progress and finish with a stale token once another worker claimed the task',
        withStore(async (store) => {
          const stale = await submitAndClaim(store, newTask(), 'w1', T0)
          // The first worker stalls past its lease; housekeeping takes the task back; w2 claims it.
          const later = T0 + LEASE_MS + 1
          assert.equal(await store.requeueExpired(later), 1)
          const current = await store.claim('w2', LEASE_MS, later)
          assert.equal(current?.task.id, stale.task.id)
          assert.ok(current.token > stale.token)
          assert.equal(current.task.attempts, 2)

          const progress = { bytesDone: 1, bytesTotal: 1, filesDone: 1, filesTotal: 1 }
          assert.equal(await store.renew(stale, LEASE_MS, later + 1), false)
          assert.equal(await store.progress(stale, progress, later + 1), false)
          assert.equal(await store.finish(stale, succeeded('from-w1'), later + 1), false)
          assert.equal(await store.release(stale, later + 1), false)

          const during = await store.get(stale.task.id)
          assert.equal(during?.state, 'running')
          assert.equal(during.leaseOwner, 'w2')
          assert.equal(during.bytesDone, 0)

          assert.equal(await store.renew(current, LEASE_MS, later + 2), true)
          assert.equal(await store.finish(current, succeeded('from-w2'), later + 3), true)
          assert.equal(await store.finish(stale, failed('too late'), later + 4), false)
          const done = await store.get(stale.task.id)
          assert.equal(done?.state, 'succeeded')
          assert.equal(done.finalDestination, 'from-w2')
          assert.equal(done.finishedAt, later + 3)
          assert.deepEqual(await store.errors(stale.task.id), [])
        }),
      )

      it(
        'refuses a second finish by the same owner',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.finish(claimed, succeeded('a'), T0 + 1), true)
          assert.equal(await store.finish(claimed, failed('b'), T0 + 2), false)
          assert.equal(await store.renew(claimed, LEASE_MS, T0 + 3), false)
          const stored = await store.get(claimed.task.id)
          assert.equal(stored?.state, 'succeeded')
          assert.equal(stored.finalDestination, 'a')
        }),
      )
    })

    describe('finish', () => {
      it(
        'succeeded keeps the final destination and the end time',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.finish(claimed, succeeded('movies/a.ts'), T0 + 42), true)
          const stored = await store.get(claimed.task.id)
          assert.equal(stored?.state, 'succeeded')
          assert.equal(publicStatus(stored.state), 'SUCCESS')
          assert.equal(stored.finalDestination, 'movies/a.ts')
          assert.equal(stored.finishedAt, T0 + 42)
          assert.equal(stored.leaseOwner, undefined)
          assert.equal(stored.attempts, 1)
        }),
      )

      it(
        'retry_wait keeps the task in progress and claimable only from its runAt',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.finish(claimed, retryAt(T0 + 5_000), T0 + 10), true)
          const waiting = await store.get(claimed.task.id)
          assert.equal(waiting?.state, 'retry_wait')
          assert.equal(publicStatus(waiting.state), 'IN_PROGRESS')
          assert.equal(waiting.runAt, T0 + 5_000)
          assert.equal(waiting.finishedAt, undefined)
          assert.equal(waiting.leaseOwner, undefined)
          assert.deepEqual(waiting.lastError, { code: 'ERR_TRANSFER', message: 'connection reset' })

          assert.equal(await store.claim('w1', LEASE_MS, T0 + 4_999), undefined)
          const again = await store.claim('w1', LEASE_MS, T0 + 5_000)
          assert.equal(again?.task.id, claimed.task.id)
          assert.equal(again.task.attempts, 2)
          assert.ok(again.token > claimed.token)
        }),
      )

      it(
        'records each error with its attempt and time, oldest first',
        withStore(async (store) => {
          const first = await submitAndClaim(store)
          await store.finish(first, retryAt(T0 + 1_000, 'first'), T0 + 10)
          const second = await store.claim('w1', LEASE_MS, T0 + 1_000)
          assert.ok(second)
          await store.finish(second, retryAt(T0 + 3_000, 'second'), T0 + 1_010)
          const third = await store.claim('w2', LEASE_MS, T0 + 3_000)
          assert.ok(third)
          await store.finish(third, { state: 'failed', error: { code: 'ERR_UNREACHABLE', message: 'third' } }, T0 + 3_010)

          assert.deepEqual(
            (await store.errors(first.task.id)).map((e) => ({ ...e })),
            [
              { attempt: 1, at: T0 + 10, code: 'ERR_TRANSFER', message: 'first' },
              { attempt: 2, at: T0 + 1_010, code: 'ERR_TRANSFER', message: 'second' },
              { attempt: 3, at: T0 + 3_010, code: 'ERR_UNREACHABLE', message: 'third' },
            ],
          )
          const stored = await store.get(first.task.id)
          assert.equal(stored?.state, 'failed')
          assert.equal(publicStatus(stored.state), 'FAILED')
          assert.equal(stored.attempts, 3)
          assert.equal(stored.finishedAt, T0 + 3_010)
          assert.deepEqual(stored.lastError, { code: 'ERR_UNREACHABLE', message: 'third' })
        }),
      )
    })

    describe('release', () => {
      it(
        'gives the task back without counting the attempt',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.release(claimed, T0 + 50), true)
          const released = await store.get(claimed.task.id)
          assert.equal(released?.state, 'queued')
          assert.equal(released.attempts, 0)
          assert.equal(released.leaseOwner, undefined)
          assert.deepEqual(await store.errors(claimed.task.id), [])
          // The released lease is spent: its owner can no longer finish.
          assert.equal(await store.finish(claimed, succeeded('late'), T0 + 51), false)

          const again = await store.claim('w2', LEASE_MS, T0 + 50)
          assert.equal(again?.task.id, claimed.task.id)
          assert.equal(again.task.attempts, 1)
          assert.ok(again.token > claimed.token)
        }),
      )
    })

    describe('requeueExpired', () => {
      it(
        'requeues expired leases and fails tasks that were at their last attempt',
        withStore(async (store) => {
          const retried = await store.submit(newTask({ maxAttempts: 3 }), T0)
          const last = await store.submit(newTask({ maxAttempts: 1 }), T0 + 1)
          const longLease = await store.submit(newTask(), T0 + 2)
          const queued = await store.submit(newTask(), T0 + 3)
          assert.equal((await store.claim('w1', LEASE_MS, T0 + 10))?.task.id, retried.id)
          assert.equal((await store.claim('w1', LEASE_MS, T0 + 10))?.task.id, last.id)
          assert.equal((await store.claim('w2', 100 * LEASE_MS, T0 + 10))?.task.id, longLease.id)

          const later = T0 + 10 + LEASE_MS + 1
          assert.equal(await store.requeueExpired(later), 2)

          const requeued = await store.get(retried.id)
          assert.equal(requeued?.state, 'queued')
          assert.equal(requeued.attempts, 1)
          assert.equal(requeued.leaseOwner, undefined)
          assert.ok(requeued.runAt <= later)

          const gaveUp = await store.get(last.id)
          assert.equal(gaveUp?.state, 'failed')
          assert.equal(gaveUp.lastError?.code, 'ERR_TOO_MANY_ATTEMPTS')
          assert.equal(gaveUp.finishedAt, later)
          const errors = await store.errors(last.id)
          assert.equal(errors.length, 1)
          assert.equal(errors[0]?.code, 'ERR_TOO_MANY_ATTEMPTS')
          assert.equal(errors[0].attempt, 1)
          assert.equal(errors[0].at, later)

          assert.equal((await store.get(longLease.id))?.state, 'running')
          assert.equal((await store.get(queued.id))?.state, 'queued')
          assert.equal(await store.requeueExpired(later), 0)
          // The requeued task is due again, behind the one that was queued all along.
          assert.equal((await store.claim('w3', LEASE_MS, later))?.task.id, queued.id)
          const reclaimed = await store.claim('w3', LEASE_MS, later)
          assert.equal(reclaimed?.task.id, retried.id)
          assert.equal(reclaimed.task.attempts, 2)
        }),
      )

      it(
        'leaves tasks waiting to retry alone',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          await store.finish(claimed, retryAt(T0 + 100 * LEASE_MS), T0 + 1)
          assert.equal(await store.requeueExpired(T0 + 10 * LEASE_MS), 0)
          const stored = await store.get(claimed.task.id)
          assert.equal(stored?.state, 'retry_wait')
          assert.equal(stored.runAt, T0 + 100 * LEASE_MS)
        }),
      )
    })

    describe('deleteFinishedBefore', () => {
      it(
        'deletes only finished tasks that ended before the cutoff, never an active one',
        withStore(async (store) => {
          const ancient = T0 - 365 * 86_400_000
          const finishAt = async (outcome: Outcome, at: number) => {
            const claimed = await submitAndClaim(store, newTask(), 'w1', at)
            assert.equal(await store.finish(claimed, outcome, at), true)
            return claimed.task.id
          }
          const oldSuccess = await finishAt(succeeded('a'), T0 + 10)
          const oldFailure = await finishAt(failed('b'), T0 + 20)
          const recent = await finishAt(succeeded('c'), T0 + 100)
          const waiting = await finishAt(retryAt(T0 + 1_000_000), ancient)
          const running = await submitAndClaim(store, newTask(), 'w1', ancient + 1)
          const queued = await store.submit(newTask(), ancient + 2)

          assert.equal(await store.deleteFinishedBefore(T0 + 50), 2)
          assert.equal(await store.get(oldSuccess), undefined)
          assert.equal(await store.get(oldFailure), undefined)
          assert.deepEqual(await store.errors(oldFailure), [])
          assert.equal((await store.get(recent))?.state, 'succeeded')

          assert.equal(await store.deleteFinishedBefore(T0 + 2_000_000), 1)
          assert.equal(await store.get(recent), undefined)
          assert.equal((await store.get(waiting))?.state, 'retry_wait')
          assert.equal((await store.get(running.task.id))?.state, 'running')
          assert.equal((await store.get(queued.id))?.state, 'queued')
        }),
      )
    })

    // The operators' side: listings, counts, cancel, re-run.
    const page = (overrides: Partial<Parameters<TaskStore['list']>[0]> = {}) => ({ limit: 50, offset: 0, ...overrides })
    const idsOf = async (store: TaskStore, query: Parameters<TaskStore['list']>[0]) => (await store.list(query)).tasks.map((t) => t.id)

    describe('list', () => {
      it(
        'lists newest first with the total, one page at a time',
        withStore(async (store) => {
          const ids: string[] = []
          for (let i = 0; i < 5; i++) ids.push((await store.submit(newTask(), T0 + i * 10)).id)
          const newestFirst = [...ids].reverse()
          const first = await store.list(page({ limit: 2 }))
          assert.equal(first.total, 5)
          assert.deepEqual(first.tasks.map((t) => t.id), newestFirst.slice(0, 2))
          assert.deepEqual(await idsOf(store, page({ limit: 2, offset: 2 })), newestFirst.slice(2, 4))
          assert.deepEqual(await idsOf(store, page({ limit: 2, offset: 4 })), newestFirst.slice(4))
          const past = await store.list(page({ offset: 10 }))
          assert.deepEqual(past, { tasks: [], total: 5 })
        }),
      )

      it(
        'filters by states, kind and creation time, all together',
        withStore(async (store) => {
          const queuedLoad = (await submitAndClaim(store, newTask(), 'w1', T0)).task
          const failedLater = await submitAndClaim(store, newTask(), 'w2', T0 + 20)
          assert.equal(await store.finish(failedLater, failed('gone'), T0 + 21), true)
          const purge = await store.submit(newTask({ kind: 'purge' }), T0 + 10)

          assert.deepEqual(await idsOf(store, page({ states: ['running'] })), [queuedLoad.id])
          assert.deepEqual(await idsOf(store, page({ states: ['queued', 'failed'] })), [purge.id, failedLater.task.id], 'the queued task first')
          assert.deepEqual(await idsOf(store, page({ kind: 'purge' })), [purge.id])
          assert.deepEqual(await idsOf(store, page({ kind: 'load' })), [queuedLoad.id, failedLater.task.id], 'the running task first')
          assert.deepEqual(await idsOf(store, page({ kind: 'load', sort: 'created' })), [failedLater.task.id, queuedLoad.id])
          assert.deepEqual(await idsOf(store, page({ createdFrom: T0 + 10 })), [purge.id, failedLater.task.id])
          assert.deepEqual(await idsOf(store, page({ createdBefore: T0 + 10 })), [queuedLoad.id])
          assert.deepEqual(await idsOf(store, page({ createdFrom: T0 + 5, createdBefore: T0 + 15 })), [purge.id])
          assert.deepEqual(await idsOf(store, page({ kind: 'load', states: ['failed'], createdFrom: T0 })), [failedLater.task.id])
          assert.equal((await store.list(page({ states: ['succeeded'] }))).total, 0)
        }),
      )

      it(
        'finds a task by its full TaskId or any part of it, such as its first 8 characters',
        withStore(async (store) => {
          const { id } = await store.submit(newTask(), T0)
          await store.submit(newTask(), T0 + 1)
          assert.deepEqual(await idsOf(store, page({ text: id })), [id])
          assert.deepEqual(await idsOf(store, page({ text: id.slice(0, 8) })), [id])
          assert.deepEqual(await idsOf(store, page({ text: id.slice(0, 8).toUpperCase() })), [id], 'as pasted from an upper-case log')
        }),
      )

      it(
        'keeps a cancelled task apart from the failed ones: its own state in filters and counts',
        withStore(async (store) => {
          const gone = await submitAndClaim(store, newTask(), 'w1', T0)
          assert.equal(await store.finish(gone, failed('gone'), T0 + 10), true)
          const { id: cancelled } = await store.submit(newTask(), T0 + 20)
          assert.equal(await store.cancel(cancelled, { code: 'ERR_CANCELLED', message: 'cancelled by operator' }, T0 + 30), true)
          assert.deepEqual(await idsOf(store, page({ states: ['failed'] })), [gone.task.id])
          assert.deepEqual(await idsOf(store, page({ states: ['cancelled'] })), [cancelled])
          assert.deepEqual(await idsOf(store, page({ states: ['failed', 'cancelled'] })), [cancelled, gone.task.id])
          const counts = await store.counts(T0, T0 + 100)
          assert.deepEqual(
            [...counts.byKindAndState].sort((a, b) => a.state.localeCompare(b.state)),
            [
              { kind: 'load', state: 'cancelled', count: 1 },
              { kind: 'load', state: 'failed', count: 1 },
            ],
          )
          assert.deepEqual([counts.failedSince, counts.cancelledSince], [1, 1])
          assert.equal((await store.status(cancelled))?.state, 'failed', 'the WFM still reads FAILED')
        }),
      )

      it(
        'orders by creation, end or duration, either way, tasks not ended last; by default active ones first',
        withStore(async (store) => {
          const end = async (submitAt: number, endAt: number) => {
            const claimed = await submitAndClaim(store, newTask(), 'w1', submitAt)
            assert.equal(await store.finish(claimed, { state: 'succeeded', finalDestination: 'x' }, endAt), true)
            return claimed.task.id
          }
          const slow = await end(T0, T0 + 500)
          const quick = await end(T0 + 10, T0 + 20)
          const middling = await end(T0 + 30, T0 + 130)
          const running = (await submitAndClaim(store, newTask(), 'w2', T0 + 40)).task.id
          const { id: waiting } = await store.submit(newTask(), T0 + 50)
          const now = T0 + 1_000
          assert.deepEqual(await idsOf(store, page({ now })), [running, waiting, middling, quick, slow])
          assert.deepEqual(await idsOf(store, page({ sort: 'created', order: 'asc', now })), [slow, quick, middling, running, waiting])
          assert.deepEqual((await idsOf(store, page({ sort: 'finished', now }))).slice(0, 3), [slow, middling, quick])
          assert.deepEqual((await idsOf(store, page({ sort: 'finished', order: 'asc', now }))).slice(0, 3), [quick, middling, slow])
          // Durations to now for the unended: 960 (running), 950 (waiting); then 500, 100, 10.
          assert.deepEqual(await idsOf(store, page({ sort: 'duration', now })), [running, waiting, slow, middling, quick])
          assert.deepEqual(await idsOf(store, page({ sort: 'duration', order: 'asc', now })), [quick, middling, slow, waiting, running])
        }),
      )

      it(
        'shows and searches the locations with their credentials redacted, never the secret itself',
        withStore(async (store) => {
          const { id } = await store.submit(
            newTask({ source: 'ftp://Editor:s3cret-pw@Origin.example/in/Movie_1.ts', destination: 'vod/100%/a.ts', target: 'sftp://cdn:cdn-pw@cdn.example/srv/vod/100%/a.ts' }),
            T0,
          )
          const other = await store.submit(newTask({ source: 'file:///srv/in/other.ts', destination: 'vod/b.ts', target: 'file:///srv/cdn/vod/b.ts' }), T0 + 1)
          const [listed] = (await store.list(page({ text: 'movie_1' }))).tasks
          assert.equal(listed?.id, id)
          assert.deepEqual(listed.shown, {
            source: 'ftp://Editor:***@Origin.example/in/Movie_1.ts',
            destination: 'vod/100%/a.ts',
            target: 'sftp://cdn:***@cdn.example/srv/vod/100%/a.ts',
          })
          assert.deepEqual(await idsOf(store, page({ text: 'ORIGIN.EXAMPLE' })), [id], 'in the source, ignoring case')
          assert.deepEqual(await idsOf(store, page({ text: 'cdn.example/srv' })), [id], 'in the target')
          assert.deepEqual(await idsOf(store, page({ text: 'vod/' })), [other.id, id], 'in the destination')
          assert.deepEqual(await idsOf(store, page({ text: '100%' })), [id], "'%' is a character, not a wildcard")
          assert.deepEqual(await idsOf(store, page({ text: 'Movie_' })), [id])
          assert.deepEqual(await idsOf(store, page({ text: 'Movie_2' })), [], "'_' is a character, not a wildcard")
          assert.deepEqual(await idsOf(store, page({ text: 's3cret-pw' })), [], 'a password is not searchable')
          assert.deepEqual(await idsOf(store, page({ text: 'cdn-pw' })), [])
        }),
      )

      it(
        'shows progress, attempts, the last error and the times of each task',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store, newTask({ kind: 'purge', source: undefined }), 'w1', T0)
          assert.equal(await store.progress(claimed, { bytesDone: 0, bytesTotal: 0, filesDone: 2, filesTotal: 5 }, T0 + 5), true)
          assert.equal(await store.finish(claimed, retryAt(T0 + 1_000, 'connection reset'), T0 + 6), true)
          const [listed] = (await store.list(page())).tasks
          assert.deepEqual(listed, {
            id: claimed.task.id,
            kind: 'purge',
            state: 'retry_wait',
            attempts: 1,
            maxAttempts: 3,
            runAt: T0 + 1_000,
            bytesDone: 0,
            bytesTotal: 0,
            filesDone: 2,
            filesTotal: 5,
            lastError: { code: 'ERR_TRANSFER', message: 'connection reset' },
            createdAt: T0,
            startedAt: T0,
            updatedAt: T0 + 6,
            finishedAt: undefined,
            shown: { destination: 'movies/a.ts', target: 'file:///srv/cdn/movies/a.ts' },
          })
        }),
      )
    })

    describe('counts', () => {
      it(
        'counts by kind and state, failures since a time, and the oldest due task',
        withStore(async (store) => {
          assert.deepEqual(await store.counts(T0, T0), { byKindAndState: [], failedSince: 0, cancelledSince: 0, succeededSince: 0, bytesSince: 0 })
          const early = await submitAndClaim(store, newTask(), 'w1', T0)
          assert.equal(await store.finish(early, failed('old'), T0 + 10), true)
          const late = await submitAndClaim(store, newTask(), 'w1', T0 + 20)
          assert.equal(await store.finish(late, failed('new'), T0 + 100), true)
          const waiting = await submitAndClaim(store, newTask(), 'w1', T0 + 310)
          assert.equal(await store.finish(waiting, retryAt(T0 + 5_000), T0 + 320), true)
          await submitAndClaim(store, newTask(), 'w1', T0 + 400)
          await store.submit(newTask({ kind: 'purge' }), T0 + 200)
          await store.submit(newTask(), T0 + 300)

          const counts = await store.counts(T0 + 50, T0 + 1_000)
          const sorted = [...counts.byKindAndState].sort((a, b) => `${a.kind}${a.state}`.localeCompare(`${b.kind}${b.state}`))
          assert.deepEqual(sorted, [
            { kind: 'load', state: 'failed', count: 2 },
            { kind: 'load', state: 'queued', count: 1 },
            { kind: 'load', state: 'retry_wait', count: 1 },
            { kind: 'load', state: 'running', count: 1 },
            { kind: 'purge', state: 'queued', count: 1 },
          ])
          assert.equal(counts.failedSince, 1, 'only the failure at T0 + 100')
          assert.equal(counts.oldestRunningStartedAt, T0 + 400)
          assert.equal(counts.oldestDueAt, T0 + 200, 'the purge; the retry is not due yet')
          assert.equal((await store.counts(T0 + 50, T0 + 10_000)).oldestDueAt, T0 + 200)
        }),
      )
    })

    describe('counts of the day', () => {
      it(
        'counts the successes since the day asked and the bytes they published',
        withStore(async (store) => {
          const yesterday = await submitAndClaim(store, newTask(), 'w1', T0)
          await store.progress(yesterday, { bytesDone: 5, bytesTotal: 5, filesDone: 1, filesTotal: 1 }, T0 + 1)
          assert.equal(await store.finish(yesterday, succeeded('a'), T0 + 2), true)
          const today = await submitAndClaim(store, newTask(), 'w1', T0 + 100)
          await store.progress(today, { bytesDone: 700, bytesTotal: 700, filesDone: 1, filesTotal: 1 }, T0 + 101)
          assert.equal(await store.finish(today, succeeded('b'), T0 + 102), true)
          const counts = await store.counts(T0 + 1_000, T0 + 1_000, T0 + 50)
          assert.deepEqual([counts.succeededSince, counts.bytesSince, counts.failedSince], [1, 700, 0])
        }),
      )
    })

    describe('cancel', () => {
      const cancelled = { code: 'ERR_CANCELLED' as const, message: 'cancelled by operator' }

      it(
        'ends a queued task FAILED with the reason in its history; it is never claimed',
        withStore(async (store) => {
          const { id } = await store.submit(newTask(), T0)
          assert.equal(await store.cancel(id, cancelled, T0 + 5), true)
          const task = await store.get(id)
          assert.equal(task?.state, 'failed')
          assert.deepEqual(task.lastError, cancelled)
          assert.equal(task.finishedAt, T0 + 5)
          assert.deepEqual(await store.errors(id), [{ attempt: 0, at: T0 + 5, ...cancelled }])
          assert.equal(await store.claim('w1', LEASE_MS, T0 + 10), undefined)
          assert.deepEqual(await store.status(id), { state: 'failed', destination: task.destination })
        }),
      )

      it(
        'ends a task waiting to retry, keeping its earlier errors',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.finish(claimed, retryAt(T0 + 1_000, 'connection reset'), T0 + 1), true)
          assert.equal(await store.cancel(claimed.task.id, cancelled, T0 + 2), true)
          assert.deepEqual(
            (await store.errors(claimed.task.id)).map((e) => [e.attempt, e.code]),
            [
              [1, 'ERR_TRANSFER'],
              [1, 'ERR_CANCELLED'],
            ],
          )
          assert.equal(await store.claim('w1', LEASE_MS, T0 + 2_000), undefined)
        }),
      )

      it(
        'ends a running task and revokes its lease: its worker can no longer write',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.cancel(claimed.task.id, cancelled, T0 + 1), true)
          assert.equal(await store.renew(claimed, LEASE_MS, T0 + 2), false)
          assert.equal(await store.progress(claimed, { bytesDone: 1, bytesTotal: 2, filesDone: 0, filesTotal: 1 }, T0 + 2), false)
          assert.equal(await store.finish(claimed, succeeded('too/late.ts'), T0 + 3), false)
          assert.equal(await store.release(claimed, T0 + 3), false)
          const task = await store.get(claimed.task.id)
          assert.equal(task?.state, 'failed')
          assert.deepEqual(task.lastError, cancelled)
          assert.equal(task.finalDestination, undefined)
          assert.equal(await store.requeueExpired(T0 + 10 * LEASE_MS), 0)
        }),
      )

      it(
        'refuses a task that has ended, or does not exist, and changes nothing',
        withStore(async (store) => {
          const done = await submitAndClaim(store)
          assert.equal(await store.finish(done, succeeded('movies/a.ts'), T0 + 1), true)
          assert.equal(await store.cancel(done.task.id, cancelled, T0 + 2), false)
          assert.equal((await store.get(done.task.id))?.state, 'succeeded')
          assert.deepEqual(await store.errors(done.task.id), [])
          assert.equal(await store.cancel(randomUUID(), cancelled, T0 + 2), false)
        }),
      )
    })

    describe('rerun', () => {
      it(
        'makes a new queued task with the failed one\'s request; the failed one stays as it was',
        withStore(async (store) => {
          const task = newTask({ metadataXml: '<MetaData/>', metadataPairs: [{ key: 'title', value: 'A' }] })
          const claimed = await submitAndClaim(store, task)
          assert.equal(await store.finish(claimed, failed('gone'), T0 + 1), true)
          const rerun = await store.rerun(claimed.task.id, T0 + 10)
          assert.ok(rerun)
          assert.equal(rerun.created, true)
          assert.notEqual(rerun.id, claimed.task.id)
          const fresh = await store.get(rerun.id)
          assert.ok(fresh)
          assert.deepEqual(
            [fresh.kind, fresh.state, fresh.source, fresh.destination, fresh.target, fresh.metadataXml, fresh.metadataPairs, fresh.maxAttempts],
            ['load', 'queued', task.source, task.destination, task.target, '<MetaData/>', [{ key: 'title', value: 'A' }], 3],
          )
          assert.deepEqual([fresh.attempts, fresh.createdAt, fresh.runAt, fresh.lastError, fresh.bytesDone], [0, T0 + 10, T0 + 10, undefined, 0])
          assert.deepEqual(await store.errors(rerun.id), [])
          assert.equal(fresh.rerunOf, claimed.task.id, 'it names the task it re-runs')
          assert.equal((await store.list(page({ text: 'origin.example' }))).tasks.find((t) => t.id === rerun.id)?.rerunOf, claimed.task.id)
          assert.equal((await store.get(claimed.task.id))?.rerunOf, undefined)
          assert.equal((await store.list(page({ text: 'origin.example' }))).total, 2, 'the new task is listed and searchable too')
          assert.equal((await store.get(claimed.task.id))?.state, 'failed')
          assert.equal((await store.claim('w1', LEASE_MS, T0 + 11))?.task.id, rerun.id)
        }),
      )

      it(
        'answers the active identical task instead of a second one, as submit does',
        withStore(async (store) => {
          const task = newTask()
          const claimed = await submitAndClaim(store, task)
          assert.equal(await store.finish(claimed, failed('gone'), T0 + 1), true)
          const first = await store.rerun(claimed.task.id, T0 + 2)
          assert.deepEqual(await store.rerun(claimed.task.id, T0 + 3), { id: first?.id, created: false })
          assert.deepEqual(await store.submit(task, T0 + 4), { id: first?.id, created: false })
        }),
      )

      it(
        'refuses a task that has not failed, or does not exist',
        withStore(async (store) => {
          const { id: queued } = await store.submit(newTask(), T0)
          assert.equal(await store.rerun(queued, T0 + 1), undefined)
          const claimed = await store.claim('w1', LEASE_MS, T0 + 1)
          assert.equal(await store.rerun(queued, T0 + 2), undefined)
          assert.equal(await store.finish(claimed!, succeeded('movies/a.ts'), T0 + 3), true)
          assert.equal(await store.rerun(queued, T0 + 4), undefined)
          assert.equal(await store.rerun(randomUUID(), T0 + 4), undefined)
          assert.equal((await store.list(page())).total, 1)
        }),
      )
    })

    describe('invalidation records', () => {
      it(
        'keeps each request and answer under the attempt that made it; refused after the lease is lost',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          const call = { provider: 'http', request: 'PURGE http://cache:6081/vod/a.m3u8', subject: 'https://cdn.example/vod/a.m3u8', status: 200, answer: 'Purged', ok: true }
          assert.equal(await store.recordInvalidation(claimed, call, T0 + 1), true)
          assert.equal(await store.recordInvalidation(claimed, { ...call, status: undefined, answer: 'ECONNREFUSED', ok: false }, T0 + 2), true)
          assert.equal(await store.finish(claimed, succeeded('movies/a.ts'), T0 + 3), true)
          assert.equal(await store.recordInvalidation(claimed, call, T0 + 4), false)
          assert.deepEqual(await store.invalidations(claimed.task.id), [
            { attempt: 1, at: T0 + 1, ...call },
            { attempt: 1, at: T0 + 2, provider: 'http', request: call.request, subject: call.subject, answer: 'ECONNREFUSED', ok: false },
          ])
        }),
      )
    })

    describe('notification outbox', () => {
      const receivers = (document: string) => [
        { receiver: 'mam', document },
        { receiver: 'chat', document },
      ]

      it(
        'records start, retry and end as the task changes state, whichever way it ends',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.equal(await store.finish(claimed, retryAt(T0 + 10), T0 + 1), true)
          const again = await store.claim('w1', LEASE_MS, T0 + 10)
          assert.equal(await store.finish(again!, succeeded('movies/a.ts'), T0 + 11), true)
          const { id: cancelled } = await store.submit(newTask(), T0 + 12)
          assert.equal(await store.cancel(cancelled, { code: 'ERR_CANCELLED', message: 'cancelled by operator' }, T0 + 13), true)
          const { id: lost } = await store.submit(newTask({ maxAttempts: 1 }), T0 + 14)
          await store.claim('w1', LEASE_MS, T0 + 14)
          assert.equal(await store.requeueExpired(T0 + 14 + LEASE_MS + 1), 1)
          const events = (await store.outbox.events(100)).map(({ taskId, event, attempt }) => ({ taskId, event, attempt }))
          const id = claimed.task.id
          assert.deepEqual(events, [
            { taskId: id, event: 'start', attempt: 1 },
            { taskId: id, event: 'retry', attempt: 1 },
            { taskId: id, event: 'start', attempt: 2 },
            { taskId: id, event: 'end', attempt: 2 },
            { taskId: cancelled, event: 'end', attempt: 0 },
            { taskId: lost, event: 'start', attempt: 1 },
            { taskId: lost, event: 'end', attempt: 1 },
          ])
        }),
      )

      it(
        'expands an event once into one delivery per receiver, and sends each under a lease',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          await store.finish(claimed, succeeded('movies/a.ts'), T0 + 1)
          const end = (await store.outbox.events(100)).find((e) => e.event === 'end')!
          assert.equal(await store.outbox.expand(end, receivers('{"a":1}'), T0 + 2), true)
          assert.equal(await store.outbox.expand(end, receivers('{"a":2}'), T0 + 2), false)
          assert.deepEqual((await store.outbox.events(100)).map((e) => e.event), ['start'])
          const first = await store.outbox.claim(LEASE_MS, T0 + 3)
          const second = await store.outbox.claim(LEASE_MS, T0 + 3)
          assert.equal(await store.outbox.claim(LEASE_MS, T0 + 3), undefined)
          assert.deepEqual([first?.receiver, second?.receiver].sort(), ['chat', 'mam'])
          assert.equal(first?.document, '{"a":1}')
          assert.equal(first?.attempts, 1)
          assert.equal(await store.outbox.settle(first!, { state: 'delivered', status: 204 }, T0 + 4), true)
          assert.equal(await store.outbox.settle(second!, { state: 'pending', nextAt: T0 + 100, status: 503, error: 'answered 503' }, T0 + 4), true)
          assert.equal(await store.outbox.claim(LEASE_MS, T0 + 50), undefined)
          const retried = await store.outbox.claim(LEASE_MS, T0 + 100)
          assert.equal(retried?.id, second?.id)
          assert.equal(retried?.attempts, 2)
          // Its sender died: after the lease, another takes it, and the first can no longer settle it.
          const taken = await store.outbox.claim(LEASE_MS, T0 + 100 + LEASE_MS + 1)
          assert.equal(taken?.id, second?.id)
          assert.equal(await store.outbox.settle(retried!, { state: 'delivered', status: 200 }, T0 + 1200), false)
          assert.equal(await store.outbox.settle(taken!, { state: 'failed', status: 410, error: 'answered 410' }, T0 + 1200), true)
          const listed = await store.outbox.list({ taskId: claimed.task.id, limit: 10, offset: 0 })
          assert.equal(listed.total, 2)
          assert.deepEqual(listed.deliveries.map((d) => [d.receiver, d.state, d.lastStatus]).sort(), [['chat', 'failed', 410], ['mam', 'delivered', 204]])
          assert.equal((await store.outbox.list({ state: 'failed', limit: 10, offset: 0 })).total, 1)
        }),
      )

      it(
        'sends a delivery again from its first attempt when an operator asks',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          await store.finish(claimed, failed('missing'), T0 + 1)
          const end = (await store.outbox.events(100)).find((e) => e.event === 'end')!
          await store.outbox.expand(end, [{ receiver: 'mam', document: '{}' }], T0 + 2)
          const sent = await store.outbox.claim(LEASE_MS, T0 + 3)
          await store.outbox.settle(sent!, { state: 'delivered', status: 200 }, T0 + 4)
          const again = await store.outbox.resend(sent!.id, T0 + 5)
          assert.equal(again?.state, 'pending')
          assert.equal(again?.attempts, 0)
          assert.equal((await store.outbox.claim(LEASE_MS, T0 + 5))?.id, sent!.id)
          assert.equal(await store.outbox.resend(randomUUID(), T0 + 6), undefined)
        }),
      )
    })

    describe('ping', () => {
      it(
        'resolves while the database answers',
        withStore(async (store) => {
          await store.ping()
        }),
      )
    })
  })
}
