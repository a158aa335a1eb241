// The Worker against a real SQLite store, with a fake TaskRunner (our own code boundary: it stands in
// for the transfer layer) and a clock the test moves. Waits poll the store until a state is reached,
// under an overall cap; nothing asserts on elapsed time.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { PublishError, type Code } from '../../src/errors.js'
import { createLogger } from '../../src/observability/logger.js'
import { openSqliteStore } from '../../src/tasks/sqlite/store.js'
import type { TaskStore } from '../../src/tasks/store.js'
import type { NewTask, Task, TaskState } from '../../src/tasks/types.js'
import { Worker, type TaskRunner, type WorkerOptions } from '../../src/tasks/worker.js'

const T0 = Date.UTC(2025, 0, 1)
/** Long in clock terms, so the lease never runs out by itself unless a test moves the clock past it. */
const LEASE_MS = 600_000
const RETRY_BASE_MS = 1_000
/** How long a wait may take before the test gives up: a safety net, not an expectation. */
const WAIT_CAP_MS = 10_000

let dir: string
let store: TaskStore
let now: number
let workers: Worker[]

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'apubi-worker-'))
  store = openSqliteStore(join(dir, 'tasks.sqlite'))
  now = T0
  workers = []
})

afterEach(async () => {
  // A test that failed half-way must not leave a claim loop (and its timers) behind.
  await Promise.all(workers.map((w) => w.stop(0)))
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

function startWorker(runner: TaskRunner, options: Partial<WorkerOptions> = {}, on: TaskStore = store): Worker {
  const worker = new Worker(on, runner, {
    name: 'w1',
    concurrency: 1,
    leaseMs: LEASE_MS,
    taskTimeoutMs: 60_000,
    pollMs: 5,
    retryBaseMs: RETRY_BASE_MS,
    retryMaxMs: 60_000,
    now: () => now,
    logger: createLogger('silent'),
    ...options,
  })
  workers.push(worker)
  worker.start()
  return worker
}

let submitted = 0
async function submit(overrides: Partial<NewTask> = {}): Promise<string> {
  const { id } = await store.submit(
    {
      kind: 'load',
      source: 'file:///srv/in/a.ts',
      destination: 'movies/',
      target: 'file:///srv/cdn/movies/',
      metadataPairs: [],
      maxAttempts: 3,
      dedupeKey: `key-${++submitted}`,
      ...overrides,
    },
    now,
  )
  return id
}

/** Polls until `probe` gives a value; fails with `what` after WAIT_CAP_MS. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_CAP_MS
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    await sleep(2)
  }
}

function waitForTask(id: string, done: (task: Task) => boolean, what: string): Promise<Task> {
  return waitFor(what, async () => {
    const task = await store.get(id)
    return task && done(task) ? task : undefined
  })
}

const inState = (id: string, state: TaskState, attempts?: number) =>
  waitForTask(id, (t) => t.state === state && (attempts === undefined || t.attempts === attempts), `task ${state} (attempts ${attempts ?? 'any'})`)

/** A promise with its settle functions outside, to hold a runner until the test lets it go. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Settles as `promise` does, or rejects when `signal` aborts, as the runner contract asks. */
function orAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
    promise.then(resolve, reject)
  })
}

/**
 * The real store, except that `finish` fails its first `failures` calls, as it would on a full disk
 * or a lost database connection.
 */
function withFailingFinish(inner: TaskStore, failures: number): TaskStore {
  let left = failures
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'finish') {
        return async (...args: Parameters<TaskStore['finish']>) => {
          if (left-- > 0) throw new Error('SQLITE_FULL: database or disk is full')
          return target.finish(...args)
        }
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/** A runner that never ends on its own and gives up only when aborted, as the contract asks. */
function untilAborted(seen: { signal?: AbortSignal }): TaskRunner {
  return (_task, signal) =>
    new Promise((_, reject) => {
      seen.signal = signal
      signal.addEventListener('abort', () => reject(signal.reason))
    })
}

describe('Worker', () => {
  it('fails an attempt that outlives the task timeout with ERR_TIMEOUT, without retrying it', async () => {
    const seen: { signal?: AbortSignal } = {}
    const worker = startWorker(untilAborted(seen), { taskTimeoutMs: 50 })
    const id = await submit()
    worker.wake()
    const task = await inState(id, 'failed')
    assert.equal(task.attempts, 1)
    assert.equal(task.lastError?.code, 'ERR_TIMEOUT')
    assert.match(task.lastError?.message ?? '', /ran longer than 50 ms/)
  })

  it('records the runner\'s final destination on success', async () => {
    const seen: Task[] = []
    const worker = startWorker(async (task) => {
      seen.push(task)
      return 'movies/a.ts'
    })
    const id = await submit()
    worker.wake()
    const task = await inState(id, 'succeeded')
    assert.equal(task.finalDestination, 'movies/a.ts')
    assert.equal(task.attempts, 1)
    assert.equal(task.finishedAt, T0)
    assert.deepEqual(await store.errors(id), [])
    assert.deepEqual(
      seen.map((t) => [t.id, t.state, t.attempts]),
      [[id, 'running', 1]],
    )
  })

  it('retries a retryable error at a later runAt, then succeeds', async () => {
    let calls = 0
    const worker = startWorker(async () => {
      if (++calls === 1) throw new PublishError('ERR_TRANSFER', 'connection reset by peer')
      return 'movies/a.ts'
    })
    const id = await submit()
    worker.wake()
    const waiting = await inState(id, 'retry_wait', 1)
    // Attempt 1 waits the base delay with equal jitter: between half of it and all of it.
    assert.ok(waiting.runAt >= T0 + RETRY_BASE_MS / 2 && waiting.runAt <= T0 + RETRY_BASE_MS, `runAt ${waiting.runAt - T0} ms after the failure`)
    assert.deepEqual(waiting.lastError, { code: 'ERR_TRANSFER', message: 'connection reset by peer' })

    now = waiting.runAt
    worker.wake()
    const done = await inState(id, 'succeeded')
    assert.equal(done.attempts, 2)
    assert.equal(done.finalDestination, 'movies/a.ts')
    assert.equal(calls, 2)
    assert.deepEqual(
      (await store.errors(id)).map((e) => ({ ...e })),
      [{ attempt: 1, at: T0, code: 'ERR_TRANSFER', message: 'connection reset by peer' }],
    )
  })

  it('fails after maxAttempts retryable errors, with every error recorded', async () => {
    let calls = 0
    const worker = startWorker(async () => {
      throw new PublishError('ERR_UNREACHABLE', `connect ECONNREFUSED (call ${++calls})`)
    })
    const id = await submit({ maxAttempts: 3 })
    worker.wake()
    const failedAt: number[] = []
    for (let attempt = 1; attempt < 3; attempt++) {
      const waiting = await inState(id, 'retry_wait', attempt)
      failedAt.push(now)
      // Each wait is at least half the doubled delay: base, then 2 × base.
      assert.ok(waiting.runAt >= now + (RETRY_BASE_MS * 2 ** (attempt - 1)) / 2)
      now = waiting.runAt
      worker.wake()
    }
    const task = await inState(id, 'failed')
    failedAt.push(now)
    assert.equal(task.attempts, 3)
    assert.equal(calls, 3)
    assert.deepEqual(task.lastError, { code: 'ERR_UNREACHABLE', message: 'connect ECONNREFUSED (call 3)' })
    assert.deepEqual(
      (await store.errors(id)).map((e) => ({ ...e })),
      [1, 2, 3].map((attempt) => ({
        attempt,
        at: failedAt[attempt - 1],
        code: 'ERR_UNREACHABLE',
        message: `connect ECONNREFUSED (call ${attempt})`,
      })),
    )
  })

  for (const code of ['ERR_NOT_FOUND', 'ERR_AUTH', 'ERR_PERMISSION', 'ERR_POLICY_DENIED'] satisfies Code[]) {
    it(`fails at once after one attempt on permanent ${code}`, async () => {
      let calls = 0
      const worker = startWorker(async () => {
        calls++
        throw new PublishError(code, `refused: ${code}`)
      })
      const id = await submit({ maxAttempts: 5 })
      worker.wake()
      const task = await inState(id, 'failed')
      assert.equal(task.attempts, 1)
      assert.equal(calls, 1)
      assert.deepEqual(
        (await store.errors(id)).map((e) => ({ ...e })),
        [{ attempt: 1, at: T0, code, message: `refused: ${code}` }],
      )
    })
  }

  it('fails an unexpected error at once as ERR_INTERNAL, without its message', async () => {
    const worker = startWorker(async () => {
      throw new TypeError('Cannot read properties of undefined (reading \'size\')')
    })
    const id = await submit()
    worker.wake()
    const task = await inState(id, 'failed')
    assert.equal(task.attempts, 1)
    assert.deepEqual(task.lastError, { code: 'ERR_INTERNAL', message: 'Internal error' })
  })

  it('stores a credential in an error message redacted', async () => {
    const worker = startWorker(async () => {
      throw new PublishError('ERR_NOT_FOUND', 'stat ftp://editor:s3cr%40t@origin.example/in/a.ts: 550 No such file')
    })
    const id = await submit()
    worker.wake()
    const task = await inState(id, 'failed')
    const expected = 'stat ftp://editor:***@origin.example/in/a.ts: 550 No such file'
    assert.equal(task.lastError?.message, expected)
    assert.equal((await store.errors(id))[0]?.message, expected)
  })

  describe('stop(grace)', () => {
    it('lets a runner that ends within the grace finish: succeeded', async () => {
      const started = deferred<void>()
      const finish = deferred<string>()
      const worker = startWorker(async (_task, signal) => {
        started.resolve()
        return orAbort(finish.promise, signal)
      })
      const id = await submit()
      worker.wake()
      await started.promise
      const stopping = worker.stop(WAIT_CAP_MS)
      finish.resolve('movies/a.ts')
      await stopping
      const task = await store.get(id)
      assert.equal(task?.state, 'succeeded')
      assert.equal(task.finalDestination, 'movies/a.ts')
    })

    it('aborts a runner still busy at the deadline and gives its task back without counting the attempt', async () => {
      const seen: { signal?: AbortSignal } = {}
      const worker = startWorker(untilAborted(seen))
      const id = await submit()
      worker.wake()
      await inState(id, 'running')
      const signal = await waitFor('the runner to start', () => seen.signal)

      const stopping = worker.stop(20)
      assert.equal(signal.aborted, false)
      await stopping
      assert.equal(signal.aborted, true)
      assert.equal((signal.reason as PublishError).code, 'ERR_SHUTDOWN')

      const task = await store.get(id)
      assert.equal(task?.state, 'queued')
      assert.equal(task.attempts, 0)
      assert.equal(task.leaseOwner, undefined)
      assert.equal(task.lastError, undefined)
      assert.deepEqual(await store.errors(id), [])
    })

    it('claims nothing once stopped', async () => {
      let calls = 0
      const worker = startWorker(async () => `call ${++calls}`)
      await worker.stop(0)
      const id = await submit()
      worker.wake()
      assert.equal((await store.get(id))?.state, 'queued')
      assert.equal(calls, 0)
    })
  })

  describe('a lost lease', () => {
    /** Worker w1 holds the task; its lease runs out and w2 claims it. Returns w2's claim. */
    async function loseLease(id: string) {
      await inState(id, 'running')
      now += LEASE_MS + 1
      assert.equal(await store.requeueExpired(now), 1)
      const taken = await store.claim('w2', LEASE_MS, now)
      assert.equal(taken?.task.id, id)
      return taken
    }

    it('discards the first worker\'s success; the new owner\'s result stands', async () => {
      const finish = deferred<string>()
      const worker = startWorker((_task, signal) => orAbort(finish.promise, signal))
      const id = await submit()
      worker.wake()
      const taken = await loseLease(id)

      finish.resolve('from-w1')
      await waitFor('w1 to let go of the task', () => (worker.running === 0 ? true : undefined))
      const during = await store.get(id)
      assert.equal(during?.state, 'running')
      assert.equal(during.leaseOwner, 'w2')
      assert.equal(during.finalDestination, undefined)

      assert.equal(await store.finish(taken, { state: 'succeeded', finalDestination: 'from-w2' }, now), true)
      assert.equal((await store.get(id))?.finalDestination, 'from-w2')
    })

    it('discards the first worker\'s failure: no retry scheduled, no error recorded', async () => {
      const fail = deferred<string>()
      const worker = startWorker((_task, signal) => orAbort(fail.promise, signal))
      const id = await submit()
      worker.wake()
      await loseLease(id)

      fail.reject(new PublishError('ERR_TRANSFER', 'connection reset'))
      await waitFor('w1 to let go of the task', () => (worker.running === 0 ? true : undefined))
      const task = await store.get(id)
      assert.equal(task?.state, 'running')
      assert.equal(task.leaseOwner, 'w2')
      assert.equal(task.attempts, 2)
      assert.deepEqual(await store.errors(id), [])
    })

    it('aborts the runner when renewing finds the lease gone', async () => {
      const seen: { signal?: AbortSignal } = {}
      // A short lease makes the worker renew every 10 ms of real time.
      const worker = startWorker(untilAborted(seen), { leaseMs: 30 })
      const id = await submit()
      worker.wake()
      await inState(id, 'running')
      // Requeue and claim in one synchronous stretch (better-sqlite3 runs each call at once), so no
      // renewal can slip in between and extend the lease that is being taken.
      now += 31
      const [requeued, taken] = await Promise.all([store.requeueExpired(now), store.claim('w2', LEASE_MS, now)])
      assert.equal(requeued, 1)
      assert.equal(taken?.task.id, id)

      const signal = await waitFor('the runner to be aborted', () => (seen.signal?.aborted ? seen.signal : undefined))
      assert.equal((signal.reason as PublishError).code, 'ERR_LEASE_LOST')
      await waitFor('w1 to let go of the task', () => (worker.running === 0 ? true : undefined))
      const task = await store.get(id)
      assert.equal(task?.state, 'running')
      assert.equal(task.leaseOwner, 'w2')
      assert.deepEqual(await store.errors(id), [])
    })
  })

  describe('a store that cannot record the outcome', () => {
    /** The task stays leased to the worker that lost its result, until the lease runs out. */
    async function takeBack(id: string, worker: Worker) {
      const task = await store.get(id)
      assert.equal(task?.state, 'running')
      assert.equal(task.attempts, 1)
      assert.equal(task.lastError, undefined)
      now += LEASE_MS + 1
      assert.equal(await store.requeueExpired(now), 1)
      worker.wake()
      return inState(id, 'succeeded')
    }

    it('does not turn a success it failed to record into a failure: the task is done again after its lease', async () => {
      let calls = 0
      const worker = startWorker(async () => `movies/a.ts#${++calls}`, {}, withFailingFinish(store, 1))
      const id = await submit()
      worker.wake()
      await waitFor('the first attempt to end', () => (calls === 1 && worker.running === 0 ? true : undefined))

      const done = await takeBack(id, worker)
      assert.equal(done.attempts, 2)
      assert.equal(done.finalDestination, 'movies/a.ts#2')
      assert.deepEqual(await store.errors(id), [])
    })

    it('survives failing to record a failure: no crash, the task is taken back after its lease', async () => {
      let calls = 0
      const worker = startWorker(
        async () => {
          if (++calls === 1) throw new PublishError('ERR_TRANSFER', 'connection reset')
          return 'movies/a.ts'
        },
        {},
        withFailingFinish(store, 1),
      )
      const id = await submit()
      worker.wake()
      await waitFor('the first attempt to end', () => (calls === 1 && worker.running === 0 ? true : undefined))

      const done = await takeBack(id, worker)
      assert.equal(done.attempts, 2)
      assert.equal(calls, 2)
    })
  })

  describe('operators', () => {
    it('cancel aborts the running work with ERR_CANCELLED and resolves once the task ended FAILED, without a retry', async () => {
      const started = deferred<void>()
      const settled: string[] = []
      const worker = startWorker((_task, signal) => {
        started.resolve()
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            // The runner's own clean-up (temporary files) happens before the attempt ends.
            setTimeout(() => {
              settled.push((signal.reason as PublishError).code)
              reject(signal.reason)
            }, 20)
          }),
        )
      })
      const id = await submit({ maxAttempts: 5 })
      worker.wake()
      await started.promise
      now = T0 + 100
      assert.equal(await worker.cancel(id), true)
      assert.deepEqual(settled, ['ERR_CANCELLED'], 'the runner had settled when cancel resolved')
      const task = await store.get(id)
      assert.equal(task?.state, 'failed')
      assert.deepEqual(task.lastError, { code: 'ERR_CANCELLED', message: 'cancelled by operator' })
      assert.deepEqual(await store.errors(id), [{ attempt: 1, at: T0 + 100, code: 'ERR_CANCELLED', message: 'cancelled by operator' }])
      assert.equal(worker.running, 0)
      assert.equal(await worker.cancel(id), false, 'no longer running here')
    })

    it('cancel answers false for a task it does not run', async () => {
      const worker = startWorker(async () => 'movies/a.ts')
      const { id } = await store.submit(
        { kind: 'load', source: 'file:///srv/in/a.ts', destination: 'a.ts', target: 'file:///srv/cdn/a.ts', metadataPairs: [], maxAttempts: 3, dedupeKey: 'never-run' },
        now + 60_000,
      )
      assert.equal(await worker.cancel(id), false)
      assert.equal((await store.get(id))?.state, 'queued')
    })

    it('live progress: the latest report, the byte rate over the last seconds and the time left', async () => {
      const report = deferred<(p: { bytesDone: number; bytesTotal: number; filesDone: number; filesTotal: number }) => void>()
      const worker = startWorker((_task, signal, onProgress) => {
        report.resolve(onProgress)
        return orAbort(new Promise<string>(() => {}), signal)
      })
      const id = await submit()
      worker.wake()
      const onProgress = await report.promise
      onProgress({ bytesDone: 0, bytesTotal: 10_000, filesDone: 0, filesTotal: 2 })
      now = T0 + 2_000
      onProgress({ bytesDone: 4_000, bytesTotal: 10_000, filesDone: 1, filesTotal: 2 })
      assert.deepEqual(worker.live().get(id), { bytesDone: 4_000, bytesTotal: 10_000, filesDone: 1, filesTotal: 2, bytesPerSecond: 2_000, etaSeconds: 3, step: 'transfer' })
      now = T0 + 4_000
      assert.equal(worker.live().get(id)?.bytesPerSecond, 1_000, 'nothing came for 2 s: the rate falls')
      now = T0 + 60_000
      assert.deepEqual(worker.live().get(id), { bytesDone: 4_000, bytesTotal: 10_000, filesDone: 1, filesTotal: 2, bytesPerSecond: 0, step: 'transfer' }, 'stalled: no rate, no ETA')
      await worker.cancel(id)
      assert.equal(worker.live().has(id), false)
    })

    it('tells its observer of ends, retries and published files', async () => {
      const events: string[] = []
      let calls = 0
      const worker = startWorker(
        async (task, _signal, _progress, files) => {
          if (task.kind === 'purge') throw new PublishError('ERR_NOT_FOUND', 'gone')
          if (++calls === 1) throw new PublishError('ERR_TRANSFER', 'connection reset')
          files.record({ rel: 'a.ts', size: 10, verifiedBy: 'size', resumedFrom: 0 })
          return 'movies/a.ts'
        },
        {
          observer: {
            taskEnded: (task, state, at, code) => events.push(`${task.kind} ${state} ${at - T0} ${code ?? ''}`.trim()),
            taskRetrying: (task, code) => events.push(`${task.kind} retry ${code}`),
            filePublished: (task, file) => events.push(`${task.kind} file ${file.rel}`),
          },
        },
      )
      const load = await submit()
      worker.wake()
      await inState(load, 'retry_wait')
      now += 60_000
      worker.wake()
      await inState(load, 'succeeded')
      const purge = await submit({ kind: 'purge', source: undefined })
      worker.wake()
      await inState(purge, 'failed')
      assert.deepEqual(events, ['load retry ERR_TRANSFER', 'load file a.ts', 'load succeeded 60000', 'purge failed 60000 ERR_NOT_FOUND'])
    })

    it('shows a task invalidating, records each invalidation request on it, and reports a warning without failing it', async () => {
      const events: string[] = []
      const invalidating = deferred<void>()
      const release = deferred<void>()
      const call = { provider: 'http', request: 'PURGE http://cache:6081/a.ts', subject: 'https://cdn.example/a.ts', answer: 'ECONNREFUSED', ok: false }
      const worker = startWorker(
        async (_task, _signal, _progress, files) => {
          files.step?.('invalidating')
          files.invalidated?.(call)
          invalidating.resolve()
          await release.promise
          files.warned?.(new PublishError('ERR_UNREACHABLE', 'PURGE http://cache:6081/a.ts: ECONNREFUSED'))
          return 'movies/a.ts'
        },
        {
          observer: {
            invalidated: (task, c) => events.push(`${task.kind} invalidated ${c.ok}`),
            invalidationWarned: (task, code) => events.push(`${task.kind} warned ${code}`),
          },
        },
      )
      const id = await submit()
      worker.wake()
      await invalidating.promise
      assert.equal(worker.live().get(id)?.step, 'invalidating')
      release.resolve()
      await inState(id, 'succeeded')
      assert.deepEqual(events, ['load invalidated false', 'load warned ERR_UNREACHABLE'])
      assert.deepEqual(
        (await store.invalidations(id)).map(({ attempt, ok, request }) => ({ attempt, ok, request })),
        [{ attempt: 1, ok: false, request: call.request }],
      )
    })
  })
})
