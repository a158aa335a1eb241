// The per-host connection cap across instances (src/tasks/postgres/host-slots.ts): each limiter here
// stands for one server instance, with its own database session, all on one real PostgreSQL.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '../../src/observability/index.js'
import { createSharedHostLimiter, type SharedHostLimiter } from '../../src/tasks/postgres/host-slots.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'

const HOST = 'ftp://origin.example:21'
const logger = createLogger('silent', process.stdout, [])

let server: PostgresServer
before(async () => {
  server = await startPostgres()
})
after(() => server?.stop())

/** `count` instances with a cap of `cap` per host on a fresh database; all closed after `test`. */
async function instances(count: number, cap: number, test: (limiters: SharedHostLimiter[]) => Promise<void>, recheckMs = 60_000): Promise<void> {
  const url = await server.createDatabase('slots')
  const limiters = Array.from({ length: count }, () => createSharedHostLimiter({ url, connectionsPerHost: cap, recheckMs, logger }))
  try {
    await test(limiters)
  } finally {
    for (const limiter of limiters) await limiter.close()
    await server.dropDatabase(url)
  }
}

/** Tracks whether a promise settled, without waiting for it. */
function watch<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  return { promise, settled: () => settled }
}

const never = new AbortController().signal

describe('host connection slots shared by instances', { timeout: 60_000 }, () => {
  it('a slot freed by one instance goes to another that waits for the host; other hosts are not held up', () =>
    instances(2, 2, async ([a, b]) => {
      const held = [await a!.acquire(HOST, never), await a!.acquire(HOST, never)]
      const waiting = watch(b!.acquire(HOST, never))
      // Queued behind the waiting acquire's attempts on b's session: once it answers, those were refused.
      const other = await b!.acquire('sftp://other.example:22', never)
      assert.equal(waiting.settled(), false, 'the host has no free slot across the two instances')
      held[0]!()
      const got = await waiting.promise
      assert.equal(typeof got, 'function')
      other()
      got()
      held[1]!()
    }))

  it('an instance never holds more than the cap itself, however many ask at once', () =>
    instances(1, 2, async ([a]) => {
      const asks = Array.from({ length: 5 }, () => watch(a!.acquire(HOST, never)))
      const first = await Promise.race(asks.map((ask) => ask.promise))
      await a!.acquire('sftp://other.example:22', never).then((release) => release())
      assert.equal(asks.filter((ask) => ask.settled()).length, 2)
      first()
      await Promise.all(asks.map((ask) => ask.promise.then((release) => release())))
    }))

  it('many connections opened and closed by two instances at once: never more than the cap open', () =>
    instances(2, 3, async (limiters) => {
      let open = 0
      let peak = 0
      let done = 0
      const lane = async (limiter: SharedHostLimiter) => {
        for (let i = 0; i < 8; i++) {
          const release = await limiter.acquire(HOST, never)
          peak = Math.max(peak, ++open)
          await new Promise((r) => setImmediate(r))
          open--
          release()
          done++
        }
      }
      await Promise.all(limiters.flatMap((limiter) => Array.from({ length: 4 }, () => lane(limiter))))
      assert.equal(done, 2 * 4 * 8)
      assert.ok(peak <= 3, `peak ${peak} above the cap of 3`)
    }))

  it('a waiter that gives up (abort) takes no slot, and leaves none taken', () =>
    instances(2, 1, async ([a, b]) => {
      const release = await a!.acquire(HOST, never)
      const controller = new AbortController()
      const waiting = b!.acquire(HOST, controller.signal)
      controller.abort(new Error('task cancelled'))
      await assert.rejects(waiting, { message: 'task cancelled' })
      release()
      const again = await b!.acquire(HOST, never)
      again()
    }))

  it('the slots of an instance that dies are freed with its database session', () =>
    instances(
      2,
      2,
      async ([a, b]) => {
        await a!.acquire(HOST, never)
        await a!.acquire(HOST, never)
        const waiting = watch(b!.acquire(HOST, never))
        await b!.acquire('sftp://other.example:22', never).then((release) => release())
        assert.equal(waiting.settled(), false)
        // No release, no notification: the session just ends, as when the process is killed.
        await a!.close()
        const got = await waiting.promise
        got()
      },
      50,
    ))
})
