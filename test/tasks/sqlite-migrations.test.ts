// The SQLite store's upgrade path: a file an older server left (an older `user_version`) is migrated
// in place on open, its tasks kept; a file a newer server migrated is refused, untouched.
// (The PostgreSQL store's are in postgres-store.test.ts.)
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { migrations } from '../../src/tasks/sqlite/sql.js'
import { openSqliteStore } from '../../src/tasks/sqlite/store.js'

const T0 = Date.UTC(2025, 0, 1)

async function withFile(test: (file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'apubi-migrate-'))
  try {
    await test(join(dir, 'apubi.sqlite'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** A file as the first released schema left it, holding one queued task. */
function firstSchemaWithTask(file: string, id: string): void {
  const db = new Database(file)
  try {
    db.exec(migrations[0]!)
    db.pragma('user_version = 1')
    db.prepare(
      `INSERT INTO task (id, kind, state, source, destination, target, metadata_pairs, dedupe_key, max_attempts, run_at, created_at, updated_at)
       VALUES (?, 'load', 'queued', 'ftp://user:secret@origin.example/a.ts', 'a.ts', 'file:///srv/cdn/a.ts', '[]', 'key', 5, ?, ?, ?)`,
    ).run(id, T0, T0, T0)
  } finally {
    db.close()
  }
}

const version = (file: string): number => {
  const db = new Database(file, { readonly: true })
  try {
    return db.pragma('user_version', { simple: true }) as number
  } finally {
    db.close()
  }
}

describe('SQLite schema migrations', () => {
  it('upgrades a file of the first schema in place on open, keeping its tasks', () =>
    withFile(async (file) => {
      firstSchemaWithTask(file, 'old-task')
      const store = openSqliteStore(file)
      try {
        const task = await store.get('old-task')
        assert.equal(task?.state, 'queued')
        assert.equal(task.source, 'ftp://user:secret@origin.example/a.ts')
        assert.deepEqual(await store.submit({ kind: 'load', source: task.source, destination: 'a.ts', target: task.target, metadataPairs: [], maxAttempts: 5, dedupeKey: 'key' }, T0 + 1), {
          id: 'old-task',
          created: false,
        })
        assert.equal((await store.claim('w1', 1_000, T0 + 2))?.task.id, 'old-task')
      } finally {
        await store.close()
      }
      assert.equal(version(file), migrations.length)
    }))

  it('refuses a file a newer server migrated, and leaves it untouched', () =>
    withFile(async (file) => {
      const db = new Database(file)
      db.pragma(`user_version = ${migrations.length + 1}`)
      db.close()
      assert.throws(() => openSqliteStore(file), {
        message: `The database schema is at version ${migrations.length + 1}, newer than this server knows (${migrations.length}): run the newer apubi-server, or restore a backup taken before the upgrade`,
      })
      assert.equal(version(file), migrations.length + 1)
    }))
})
