// The sealing task store (src/tasks/sealed-store.ts) over SQLite: the store contract unchanged, the
// credentials of task URLs absent from every byte of the database files, and a task whose URLs cannot
// be unsealed (another key, no key) ending FAILED with ERR_SECRET_KEY instead of crashing or looping.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { isPublishError } from '../../src/errors.js'
import { createLogger } from '../../src/observability/logger.js'
import { sealTaskStore } from '../../src/tasks/sealed-store.js'
import { createSealer } from '../../src/tasks/sealing.js'
import { openSqliteStore } from '../../src/tasks/sqlite/store.js'
import type { TaskStore } from '../../src/tasks/store.js'
import type { NewTask } from '../../src/tasks/types.js'
import { storeConformance } from './store-suite.js'

const T0 = Date.UTC(2025, 0, 1)
const LEASE_MS = 1_000
const KEY = randomBytes(32)
const SECRET = 's3cret-Sealed-91'

/** A logger whose lines the test can read. */
function recordingLogger() {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    },
  })
  return { logger: createLogger('info', sink), lines }
}

function open(file: string, key: Buffer | undefined, logger = recordingLogger().logger): TaskStore {
  return sealTaskStore(openSqliteStore(file), createSealer(key), logger)
}

async function withDir<T>(test: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'apubi-sealed-'))
  try {
    return await test(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Every byte SQLite wrote for `file`: the database and, if present, its WAL and shared memory. */
function allBytes(file: string): string {
  return ['', '-wal', '-shm']
    .filter((suffix) => existsSync(file + suffix))
    .map((suffix) => readFileSync(file + suffix).toString('latin1'))
    .join('')
}

const withCredentials: NewTask = {
  kind: 'load',
  source: `ftp://editor:${SECRET}@origin.example:21/in/movie.ts`,
  destination: `sftp://deploy:${SECRET}@cdn.example/srv/vod/movie.ts`,
  target: `sftp://deploy:${SECRET}@cdn.example/srv/vod/movie.ts`,
  metadataPairs: [],
  maxAttempts: 3,
  dedupeKey: 'with-credentials',
}

const withoutCredentials: NewTask = {
  kind: 'load',
  source: 'ftp://origin.example/in/plain.ts',
  destination: 'Folder/plain.ts',
  target: 'file:///srv/cdn/Folder/plain.ts',
  metadataPairs: [],
  maxAttempts: 3,
  dedupeKey: 'without-credentials',
}

storeConformance('sqlite, sealed under a key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'apubi-sealed-'))
  const store = open(join(dir, 'tasks.sqlite'), KEY)
  return {
    store,
    async close() {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
})

describe('sealed task store', () => {
  it("unseals a finished task's status once, not at every poll", () =>
    withDir(async (dir) => {
      const sealer = createSealer(KEY)
      let unsealed = 0
      const store = sealTaskStore(openSqliteStore(join(dir, 'tasks.sqlite')), { ...sealer, unseal: (value) => (unsealed++, sealer.unseal(value)) }, recordingLogger().logger)
      const { id } = await store.submit(withCredentials, T0)
      const claimed = await store.claim('w1', LEASE_MS, T0)
      assert.ok(claimed)
      assert.equal(await store.finish(claimed, { state: 'succeeded', finalDestination: withCredentials.destination }, T0 + 1), true)
      const first = await store.status(id)
      const afterFirst = unsealed
      for (let i = 0; i < 3; i++) assert.deepEqual(await store.status(id), first)
      // Over SQLite, the status is also read without waiting, unsealed the same way, and only once.
      assert.ok(store.statusNow, 'a sealed SQLite store reads statuses without waiting')
      for (let i = 0; i < 3; i++) assert.deepEqual(store.statusNow(id), first)
      assert.deepEqual(first, { state: 'succeeded', destination: withCredentials.destination, finalDestination: withCredentials.destination })
      assert.equal(unsealed, afterFirst, 'no unsealing after the first poll')
      await store.close()
    }))

  it('keeps no password in any byte of the database files, and gives the rest of the code plain URLs', () =>
    withDir(async (dir) => {
      const file = join(dir, 'tasks.sqlite')
      const store = open(file, KEY)
      const { id } = await store.submit(withCredentials, T0)
      const claimed = await store.claim('w1', LEASE_MS, T0)
      assert.ok(claimed)
      assert.deepEqual([claimed.task.source, claimed.task.destination, claimed.task.target], [withCredentials.source, withCredentials.destination, withCredentials.target])
      assert.equal(await store.finish(claimed, { state: 'succeeded', finalDestination: withCredentials.destination }, T0 + 1), true)
      assert.deepEqual(await store.status(id), { state: 'succeeded', destination: withCredentials.destination, finalDestination: withCredentials.destination })
      assert.equal((await store.get(id))?.source, withCredentials.source)
      assert.ok(!allBytes(file).includes(SECRET), 'no password in the open database files')
      await store.close()

      assert.ok(!allBytes(file).includes(SECRET), 'no password in the closed database file')
      const db = new Database(file, { readonly: true })
      try {
        const row = db.prepare('SELECT source, destination, target, final_destination FROM task WHERE id = ?').get(id) as Record<string, string>
        for (const column of ['source', 'destination', 'target', 'final_destination']) {
          assert.match(row[column]!, /^sealed:v1:[0-9a-f]{8}:/, `${column} is sealed`)
        }
      } finally {
        db.close()
      }
    }))

  it('leaves URLs without credentials readable in the file', () =>
    withDir(async (dir) => {
      const file = join(dir, 'tasks.sqlite')
      const store = open(file, KEY)
      const { id } = await store.submit(withoutCredentials, T0)
      await store.close()
      const db = new Database(file, { readonly: true })
      try {
        assert.deepEqual(db.prepare('SELECT source, destination, target FROM task WHERE id = ?').get(id), {
          source: withoutCredentials.source,
          destination: withoutCredentials.destination,
          target: withoutCredentials.target,
        })
      } finally {
        db.close()
      }
    }))

  for (const [what, key, expected] of [
    ['another key', randomBytes(32), /^A URL of this task was sealed with another secret key \(key id [0-9a-f]{8}; the configured key has id [0-9a-f]{8}\): configure the key it was sealed with$/],
    ['no key', undefined, /^A URL of this task is sealed \(key id [0-9a-f]{8}\), but no secret key is configured: set APUBI_SECRET_KEY or APUBI_SECRET_KEY_FILE to the key it was sealed with$/],
  ] as const) {
    it(`with ${what}, a waiting task it cannot unseal ends FAILED with ERR_SECRET_KEY, logged once; other tasks still run and statuses still answer`, () =>
      withDir(async (dir) => {
        const file = join(dir, 'tasks.sqlite')
        const first = open(file, KEY)
        const { id: succeededId } = await first.submit({ ...withCredentials, dedupeKey: 'done' }, T0)
        const done = await first.claim('w1', LEASE_MS, T0)
        assert.ok(done)
        await first.finish(done, { state: 'succeeded', finalDestination: withCredentials.destination }, T0 + 1)
        const { id: sealedId } = await first.submit(withCredentials, T0 + 2)
        const { id: plainId } = await first.submit(withoutCredentials, T0 + 3)
        await first.close()

        const { logger, lines } = recordingLogger()
        const second = open(file, key, logger)
        try {
          const claimed = await second.claim('w2', LEASE_MS, T0 + 10)
          assert.equal(claimed?.task.id, plainId, 'the unreadable task is skipped, the next one claimed')
          assert.equal(await second.claim('w2', LEASE_MS, T0 + 11), undefined, 'and it is not claimed again')

          assert.deepEqual((await second.status(sealedId))?.state, 'failed')
          const [error] = await second.errors(sealedId)
          assert.equal(error?.code, 'ERR_SECRET_KEY')
          assert.match(error.message, expected)
          assert.equal((await second.get(sealedId))?.lastError?.code, 'ERR_SECRET_KEY')
          assert.match((await second.get(sealedId))?.source ?? '', /^sealed:v1:/, 'shown as the opaque sealed text')

          const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'task failed')
          assert.deepEqual(
            warnings.map((l) => [l['level'], l['taskId'], l['code']]),
            [['warn', sealedId, 'ERR_SECRET_KEY']],
          )

          // A success whose DestinationAsset cannot be read: GetTaskStatus must fault, not invent one.
          await assert.rejects(second.status(succeededId), (e) => isPublishError(e, 'ERR_SECRET_KEY') && expected.test(e.message))
        } finally {
          await second.close()
        }
      }))
  }
})
