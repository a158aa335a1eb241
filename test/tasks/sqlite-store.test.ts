// The SQLite task store: the shared conformance suite on a fresh temporary file per test, then what
// only a file-backed store has to promise (file mode, durability across reopen, WAL).
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { openSqliteStore } from '../../src/tasks/sqlite/store.js'
import type { NewTask } from '../../src/tasks/types.js'
import { storeConformance } from './store-suite.js'

const T0 = Date.UTC(2025, 0, 1)

/** A folder of its own per store, removed with everything SQLite put beside the file (-wal, -shm). */
async function withTempFile<T>(test: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'apubi-sqlite-'))
  try {
    return await test(join(dir, 'nested', 'tasks.sqlite'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

storeConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'apubi-sqlite-'))
  const store = openSqliteStore(join(dir, 'tasks.sqlite'))
  return {
    store,
    async close() {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
})

const task: NewTask = {
  kind: 'load',
  source: 'ftp://user:secret@origin.example/a.ts',
  destination: 'a.ts',
  target: 'file:///srv/cdn/a.ts',
  metadataXml: '<Metadata/>',
  metadataPairs: [{ key: 'k', value: 'v' }],
  maxAttempts: 5,
  dedupeKey: 'same',
}

describe('SQLite task store file', () => {
  it('is created owner-only (0600), and so are its WAL files: it holds the URLs with their credentials', () =>
    withTempFile(async (file) => {
      const store = openSqliteStore(file)
      try {
        await store.submit(task, T0)
        assert.equal((await stat(file)).mode & 0o777, 0o600)
        assert.equal((await stat(`${file}-wal`)).mode & 0o777, 0o600)
        // Held exclusively, SQLite keeps the WAL index in memory: no -shm file, readable or not.
        assert.equal(existsSync(`${file}-shm`), false)
      } finally {
        await store.close()
      }
    }))

  it('keeps tasks and their errors across close and reopen', () =>
    withTempFile(async (file) => {
      const first = openSqliteStore(file)
      const { id } = await first.submit(task, T0)
      const claimed = await first.claim('w1', 1_000, T0)
      assert.ok(claimed)
      await first.finish(claimed, { state: 'retry_wait', error: { code: 'ERR_TRANSFER', message: 'reset' }, runAt: T0 + 500 }, T0 + 1)
      const before = await first.get(id)
      await first.close()

      const second = openSqliteStore(file)
      try {
        assert.deepEqual(await second.get(id), before)
        assert.deepEqual(
          (await second.errors(id)).map((e) => ({ ...e })),
          [{ attempt: 1, at: T0 + 1, code: 'ERR_TRANSFER', message: 'reset' }],
        )
        // Still active after the restart: the same request still gets the same TaskId.
        assert.deepEqual(await second.submit(task, T0 + 2), { id, created: false })
      } finally {
        await second.close()
      }
    }))

  it('overwrites a task deleted past retention: none of its URLs stays in the file (secure_delete)', () =>
    withTempFile(async (file) => {
      const store = openSqliteStore(file)
      await store.submit(task, T0)
      const claimed = await store.claim('w1', 1_000, T0)
      assert.ok(claimed)
      await store.finish(claimed, { state: 'failed', error: { code: 'ERR_NOT_FOUND', message: 'gone' } }, T0 + 1)
      assert.equal(await store.deleteFinishedBefore(T0 + 2), 1)
      await store.close()
      assert.equal(readFileSync(file).toString('latin1').includes(task.source!), false)
    }))

  it('uses the WAL journal', () =>
    withTempFile(async (file) => {
      await openSqliteStore(file).close()
      const db = new Database(file, { readonly: true })
      try {
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal')
      } finally {
        db.close()
      }
    }))
})
