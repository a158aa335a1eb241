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

  describe(`TaskStore conformance: ${name}`, () => {
    describe('status', () => {
      it(
        'answers state and destinations, and undefined for an unknown id',
        withStore(async (store) => {
          const claimed = await submitAndClaim(store)
          assert.deepEqual(await store.status(claimed.task.id), { state: 'running', destination: claimed.task.destination })
          assert.equal(await store.finish(claimed, succeeded('final/place.ts'), T0 + 1), true)
          assert.deepEqual(await store.status(claimed.task.id), { state: 'succeeded', destination: claimed.task.destination, finalDestination: 'final/place.ts' })
          assert.equal(await store.status('no-such-task'), undefined)
        }),
      )
    })

    describe('files', () => {
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
  })
}
