// The PostgreSQL task store: the shared conformance suite (a schema of its own per test, on one real
// PostgreSQL for the file), then what only a store shared by several instances has to promise: two
// handles on one database ("two instances") racing to submit, claim and take back expired leases;
// schema migrations under a lock; housekeeping jobs run by one instance at a time.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { createLogger } from '../../src/observability/index.js'
import { openPostgres, type PostgresDatabase } from '../../src/tasks/postgres/database.js'
import { migrate } from '../../src/tasks/postgres/migrate.js'
import { createPool, lockKey } from '../../src/tasks/postgres/pool.js'
import { migrations } from '../../src/tasks/postgres/sql.js'
import type { NewTask } from '../../src/tasks/types.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'
import { storeConformance } from './store-suite.js'

const T0 = Date.UTC(2025, 0, 1)
const logger = createLogger('silent', process.stdout, [])

let server: PostgresServer
/** One database for the file; each test works in a schema of its own (or a database, where it needs one). */
let database: string
before(async () => {
  server = await startPostgres()
  database = await server.createDatabase('store')
})
after(() => server?.stop())

/** The database URL with `schema` first on the search path: the store's tables are made and used there. */
const inSchema = (url: string, schema: string) => `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`

const open = (url: string, poolSize = 4): Promise<PostgresDatabase> =>
  openPostgres(url, { poolSize, connectionsPerHost: 2, slotRecheckMs: 1_000, now: () => T0, logger })

async function freshSchema(): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`
  await server.query(database, `CREATE SCHEMA ${schema}`)
  return inSchema(database, schema)
}

storeConformance('postgres', async () => {
  const url = await freshSchema()
  const { store } = await open(url, 12) // as many connections as the suite's concurrent claimers
  return {
    store,
    async close() {
      await store.close()
      const schema = /search_path%3D(\w+)/.exec(url)![1]!
      await server.query(database, `DROP SCHEMA ${schema} CASCADE`)
    },
  }
})

const task = (dedupeKey: string, overrides: Partial<NewTask> = {}): NewTask => ({
  kind: 'load',
  source: 'ftp://user:secret@origin.example/a.ts',
  destination: 'a.ts',
  target: 'file:///srv/cdn/a.ts',
  metadataPairs: [],
  maxAttempts: 1,
  dedupeKey,
  ...overrides,
})

/** Two handles on one fresh schema, as two server instances would hold. */
async function twoInstances(test: (a: PostgresDatabase, b: PostgresDatabase) => Promise<void>): Promise<void> {
  const url = await freshSchema()
  const [a, b] = await Promise.all([open(url, 8), open(url, 8)])
  try {
    await test(a, b)
  } finally {
    await a.store.close()
    await b.store.close()
  }
}

describe('PostgreSQL task store shared by several instances', { timeout: 60_000 }, () => {
  it('the same request submitted to two instances at once makes one task', () =>
    twoInstances(async (a, b) => {
      for (let round = 0; round < 10; round++) {
        const same = task(`same-${round}`)
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).store.submit(same, T0 + i)))
        assert.equal(new Set(results.map((r) => r.id)).size, 1, `round ${round}`)
        assert.equal(results.filter((r) => r.created).length, 1, `round ${round}`)
      }
    }))

  it('instances claiming at once share the due tasks: each task to exactly one worker', () =>
    twoInstances(async (a, b) => {
      const ids = []
      for (let i = 0; i < 20; i++) ids.push((await a.store.submit(task(`k${i}`), T0 + i)).id)
      const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).store.claim(`w${i}`, 1_000, T0 + 100)))
      const won = claims.flatMap((c) => (c ? [c.task.id] : []))
      assert.deepEqual([...won].sort(), [...ids].sort())
    }))

  it('a worker of one instance whose lease another instance took back can no longer write', () =>
    twoInstances(async (a, b) => {
      await a.store.submit(task('fenced', { maxAttempts: 3 }), T0)
      const stale = await a.store.claim('a-1', 1_000, T0)
      assert.ok(stale)
      assert.equal(await b.store.requeueExpired(T0 + 1_001), 1)
      const current = await b.store.claim('b-1', 1_000, T0 + 1_002)
      assert.equal(current?.task.id, stale.task.id)
      assert.equal(await a.store.finish(stale, { state: 'succeeded', finalDestination: 'from-a' }, T0 + 1_003), false)
      assert.equal(await a.store.recordFile(stale, { rel: 'a.ts', size: 1, verifiedBy: 'size', resumedFrom: 0 }, T0 + 1_003), false)
      assert.equal(await b.store.finish(current, { state: 'succeeded', finalDestination: 'from-b' }, T0 + 1_004), true)
      assert.equal((await a.store.get(stale.task.id))?.finalDestination, 'from-b')
      assert.deepEqual(await a.store.files(stale.task.id), [])
    }))

  it('two instances taking back expired leases at once handle each task once', () =>
    twoInstances(async (a, b) => {
      const ids = []
      for (let i = 0; i < 20; i++) {
        const { id } = await a.store.submit(task(`lost-${i}`, { maxAttempts: i % 2 ? 1 : 3 }), T0)
        ids.push(id)
        assert.ok(await a.store.claim('dead', 1_000, T0))
      }
      const counts = await Promise.all([a.store.requeueExpired(T0 + 5_000), b.store.requeueExpired(T0 + 5_000)])
      assert.equal(counts[0] + counts[1], 20)
      for (const [i, id] of ids.entries()) {
        const stored = await b.store.get(id)
        assert.equal(stored?.state, i % 2 ? 'failed' : 'queued')
        assert.equal((await b.store.errors(id)).length, i % 2 ? 1 : 0, 'one error row for a task at its last attempt')
      }
    }))

  it('a housekeeping job runs in one instance at a time; another instance skips its turn meanwhile', () =>
    twoInstances(async (a, b) => {
      let finishWork!: () => void
      const working = new Promise<void>((resolve) => (finishWork = resolve))
      let started!: () => void
      const hasStarted = new Promise<void>((resolve) => (started = resolve))
      const first = a.exclusive('requeue-expired', async () => {
        started()
        await working
        return 'a'
      })
      await hasStarted
      let ranInB = false
      assert.equal(await b.exclusive('requeue-expired', async () => (ranInB = true)), undefined)
      assert.equal(ranInB, false)
      assert.equal(await a.exclusive('delete-finished', async () => 'another job'), 'another job', 'other jobs are not held up')
      finishWork()
      assert.equal(await first, 'a')
      assert.equal(await b.exclusive('requeue-expired', async () => 'b'), 'b')
    }))

  it('a housekeeping lock dies with its instance: a crashed holder never blocks the others', () =>
    twoInstances(async (_, b) => {
      // An instance that took the job's lock and then died: its session ends without unlocking.
      const crashed = new pg.Client({ connectionString: database })
      await crashed.connect()
      await crashed.query('SELECT pg_advisory_lock($1::bigint)', [lockKey('job:delete-finished')])
      assert.equal(await b.exclusive('delete-finished', async () => 'b'), undefined)
      await crashed.end()
      assert.equal(await b.exclusive('delete-finished', async () => 'b'), 'b')
    }))
})

describe('PostgreSQL schema migrations', { timeout: 60_000 }, () => {
  it('instances starting together on an empty database migrate it once, the others wait and find it done', async () => {
    const url = await freshSchema()
    const opened = await Promise.all([open(url), open(url), open(url)])
    try {
      const rows = await server.query<{ version: number }>(url, 'SELECT version FROM apubi_schema ORDER BY version')
      assert.deepEqual(rows.map((r) => r.version), migrations.map((_, i) => i + 1))
      const { id } = await opened[0]!.store.submit(task('after-migration'), T0)
      assert.equal((await opened[2]!.store.get(id))?.state, 'queued')
    } finally {
      for (const db of opened) await db.store.close()
    }
  })

  it('upgrades an older schema in place, keeping its tasks, and applies each version once', async () => {
    const url = await freshSchema()
    const first = await open(url)
    const { id } = await first.store.submit(task('kept'), T0)
    await first.store.close()

    const next = [...migrations, 'ALTER TABLE task ADD COLUMN note text']
    const pool = createPool(url, 2, logger)
    try {
      const applied = await Promise.all([migrate(pool, T0 + 1, next), migrate(pool, T0 + 1, next)])
      assert.deepEqual(applied.flat(), [next.length], 'the new version applied once, by one of the two')
    } finally {
      await pool.end()
    }
    assert.deepEqual(await server.query(url, 'SELECT id, note FROM task'), [{ id, note: null }])
  })

  it('refuses a schema newer than this server knows, and leaves it untouched', async () => {
    const url = await freshSchema()
    await (await open(url)).store.close()
    await server.query(url, 'INSERT INTO apubi_schema (version, applied_at) VALUES ($1, $2)', [migrations.length + 1, T0])
    await assert.rejects(open(url), {
      message: `The database schema is at version ${migrations.length + 1}, newer than this server knows (${migrations.length}): run the newer apubi-server, or restore a backup taken before the upgrade`,
    })
    const rows = await server.query<{ version: number }>(url, 'SELECT max(version) AS version FROM apubi_schema')
    assert.equal(rows[0]?.version, migrations.length + 1)
  })
})
