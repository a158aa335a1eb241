import { randomUUID } from 'node:crypto'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { Code } from '../../errors.js'
import { redact } from '../../observability/index.js'
import type { TaskStore } from '../store.js'
import type { Claimed, InvalidationRecord, Outcome, RecordedInvalidation, PublishedFile, Task, TaskCounts, TaskError, TaskPage, TaskQuery, TaskState } from '../types.js'
import { orderOf, toSummary, toTask, type Row } from '../rows.js'
import { SqliteOutbox } from './outbox.js'
import * as sql from './sql.js'

/** A task from its row; the metadata pairs as this store keeps them. */
const rowToTask = (row: Row): Task => toTask(row, JSON.parse(row['metadata_pairs'] as string))

type Status = NonNullable<Awaited<ReturnType<TaskStore['status']>>>

/** Ended tasks whose status is remembered, a few hundred bytes each. */
const REMEMBERED_FINISHED = 4_096

/**
 * The embedded task store: one SQLite file in WAL mode. `synchronous = FULL` because a TaskId we
 * returned must survive a power cut, not only a process crash.
 */
export function openSqliteStore(file: string): TaskStore {
  mkdirSync(dirname(file), { recursive: true })
  // Created owner-only before SQLite opens it: it holds the credentials of the URLs of every task.
  closeSync(openSync(file, 'a', 0o600))
  const db = new Database(file)
  try {
    // One process owns the file while it runs: a second server on the same data folder stops at
    // start rather than sharing it, and no read pays for file-lock system calls (GetTaskStatus is
    // about 10 % faster). Readers outside the server use the CLI and the admin interface.
    db.pragma('busy_timeout = 5000')
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    // Deleted rows are overwritten, not left in free pages: a task past retention takes its URLs
    // (and, without a secret key, their passwords) out of the file with it.
    db.pragma('secure_delete = ON')
    migrate(db)
  } catch (e) {
    db.close()
    if ((e as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(`${file} is in use by another process: is another apubi-server running on this data folder?`, { cause: e })
    }
    throw e
  }
  return new SqliteTaskStore(db)
}

/**
 * Brings the schema to the newest version (`user_version` counts the migrations applied), in one
 * transaction: a failed migration leaves the file as it was.
 * @throws Error when the file holds a newer schema than this code knows (a newer server migrated it).
 */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > sql.migrations.length) {
      throw new Error(`The database schema is at version ${version}, newer than this server knows (${sql.migrations.length}): run the newer apubi-server, or restore a backup taken before the upgrade`)
    }
    for (let v = version; v < sql.migrations.length; v++) db.exec(sql.migrations[v]!)
    db.pragma(`user_version = ${sql.migrations.length}`)
  }).immediate()
}

class SqliteTaskStore implements TaskStore {
  private readonly statements
  readonly outbox: SqliteOutbox
  /**
   * The status of tasks that ended, as last read. An ended task never changes again until
   * retention deletes it (`deleteFinishedBefore` forgets them all), and no other process writes
   * this file (locking_mode EXCLUSIVE): a WFM polling an ended task, or a poller hammering one,
   * is answered without SQLite. The oldest remembered are dropped first.
   */
  private readonly finished = new Map<string, Status>()
  constructor(private readonly db: Database.Database) {
    const prepare = (text: string) => db.prepare(text)
    this.statements = Object.fromEntries(
      Object.entries(sql)
        .filter(([name]) => name !== 'migrations')
        .map(([name, text]) => [name, prepare(text as string)]),
    ) as Record<Exclude<keyof typeof sql, 'migrations'>, Database.Statement>
    this.outbox = new SqliteOutbox(db, this.statements)
  }

  async submit(task: Parameters<TaskStore['submit']>[0], now: number) {
    return this.db
      .transaction(() => {
        const id = randomUUID()
        const inserted = this.statements.insertTask.run({
          id,
          kind: task.kind,
          source: task.source ?? null,
          destination: task.destination,
          target: task.target,
          metadataXml: task.metadataXml ?? null,
          metadataPairs: JSON.stringify(task.metadataPairs),
          dedupeKey: task.dedupeKey,
          maxAttempts: task.maxAttempts,
          sourceShown: task.shown ? (task.shown.source ?? null) : task.source === undefined ? null : redact(task.source),
          destinationShown: task.shown?.destination ?? redact(task.destination),
          targetShown: task.shown?.target ?? redact(task.target),
          now,
        })
        if (inserted.changes === 1) return { id, created: true }
        const existing = this.statements.activeByDedupeKey.get(task.dedupeKey) as { id: string }
        return { id: existing.id, created: false }
      })
      .immediate()
  }

  async get(id: string): Promise<Task | undefined> {
    const row = this.statements.taskById.get(id) as Row | undefined
    return row && rowToTask(row)
  }

  async status(id: string): Promise<Status | undefined> {
    return this.statusNow(id)
  }

  // A property, not a method: callers take it off the store (TaskStore.statusNow is optional).
  readonly statusNow = (id: string): Status | undefined => {
    const known = this.finished.get(id)
    if (known) return known
    const row = this.statements.statusById.get(id) as { state: TaskState; destination: string; final_destination: string | null } | undefined
    if (!row) return undefined
    const status = Object.freeze({ state: row.state, destination: row.destination, ...(row.final_destination !== null && { finalDestination: row.final_destination }) })
    if (status.state === 'succeeded' || status.state === 'failed') {
      if (this.finished.size >= REMEMBERED_FINISHED) this.finished.delete(this.finished.keys().next().value!)
      this.finished.set(id, status)
    }
    return status
  }

  async errors(id: string): Promise<TaskError[]> {
    return this.statements.errorsOfTask.all(id) as TaskError[]
  }

  async claim(worker: string, leaseMs: number, now: number): Promise<Claimed | undefined> {
    const row = this.statements.claimNext.get({ worker, leaseUntil: now + leaseMs, now }) as Row | undefined
    if (!row) return undefined
    const task = rowToTask(row)
    return { task, token: task.leaseToken }
  }

  async renew(claimed: Claimed, leaseMs: number, now: number): Promise<boolean> {
    const result = this.statements.renewLease.run({ id: claimed.task.id, token: claimed.token, leaseUntil: now + leaseMs, now })
    return result.changes === 1
  }

  async progress(claimed: Claimed, progress: Parameters<TaskStore['progress']>[1], now: number): Promise<boolean> {
    return this.withoutSync(() => this.statements.saveProgress.run({ id: claimed.task.id, token: claimed.token, ...progress, now }).changes === 1)
  }

  async recordFile(claimed: Claimed, file: PublishedFile, now: number): Promise<boolean> {
    const digests = { md5: file.md5 ?? null, sha256: file.sha256 ?? null }
    return this.withoutSync(() => this.statements.recordFile.run({ id: claimed.task.id, token: claimed.token, ...file, ...digests, now }).changes === 1)
  }

  /**
   * Commits `write` without waiting for the disk. For what a later attempt can do again (progress,
   * the record of a published file, which only spares copying it twice), an fsync per write stalls
   * the event loop once per file: about a fifth of the server's time on a package of small files
   * (profiled). The next synchronous commit behind it in the WAL makes it durable as well; a power
   * cut before that loses at most records the next attempt rebuilds.
   */
  private withoutSync<T>(write: () => T): T {
    this.statements.syncNormal.run()
    try {
      return write()
    } finally {
      this.statements.syncFull.run()
    }
  }

  async files(id: string): Promise<PublishedFile[]> {
    const rows = this.statements.filesOfTask.all(id) as Array<PublishedFile & { md5: string | null; sha256: string | null }>
    return rows.map(({ md5, sha256, ...file }) => ({ ...file, ...(md5 !== null && { md5 }), ...(sha256 !== null && { sha256 }) }))
  }

  async recordInvalidation(claimed: Claimed, record: InvalidationRecord, now: number): Promise<boolean> {
    const values = { id: claimed.task.id, token: claimed.token, now, ...record, status: record.status ?? null, ok: record.ok ? 1 : 0 }
    return this.statements.recordInvalidation.run(values).changes === 1
  }

  async invalidations(id: string): Promise<RecordedInvalidation[]> {
    const rows = this.statements.invalidationsOfTask.all(id) as Array<Omit<RecordedInvalidation, 'ok' | 'status'> & { ok: number; status: number | null }>
    return rows.map(({ ok, status, ...rest }) => ({ ...rest, ...(status !== null && { status }), ok: ok === 1 }))
  }

  async finish(claimed: Claimed, outcome: Outcome, now: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        const error = outcome.state === 'succeeded' ? undefined : outcome.error
        const changed = this.statements.finishTask.run({
          id: claimed.task.id,
          token: claimed.token,
          state: outcome.state,
          finalDestination: outcome.state === 'succeeded' ? outcome.finalDestination : null,
          packageSummary: outcome.state === 'succeeded' && outcome.package ? JSON.stringify(outcome.package) : null,
          errorCode: error?.code ?? null,
          errorMessage: error?.message ?? null,
          runAt: outcome.state === 'retry_wait' ? outcome.runAt : claimed.task.runAt,
          finishedAt: outcome.state === 'retry_wait' ? null : now,
          now,
        }).changes
        if (changed === 1 && error) {
          this.statements.insertError.run({ id: claimed.task.id, attempt: claimed.task.attempts, now, ...error })
        }
        return changed === 1
      })
      .immediate()
  }

  async release(claimed: Claimed, now: number): Promise<boolean> {
    return this.statements.releaseTask.run({ id: claimed.task.id, token: claimed.token, now }).changes === 1
  }

  async requeueExpired(now: number): Promise<number> {
    return this.db
      .transaction(() => {
        const expired = this.statements.expiredLeases.all(now) as Array<{ id: string; attempts: number; max_attempts: number }>
        for (const task of expired) {
          if (task.attempts >= task.max_attempts) {
            const error = { code: 'ERR_TOO_MANY_ATTEMPTS' satisfies Code, message: `Worker lost during its last attempt (${task.attempts})` }
            this.statements.failExpiredTask.run({ id: task.id, now, ...error })
            this.statements.insertError.run({ id: task.id, attempt: task.attempts, now, ...error })
          } else {
            this.statements.requeueTask.run({ id: task.id, now })
          }
        }
        return expired.length
      })
      .immediate()
  }

  async deleteFinishedBefore(cutoff: number): Promise<number> {
    const deleted = this.statements.deleteFinished.run(cutoff).changes
    if (deleted > 0) this.finished.clear()
    return deleted
  }

  async list(query: TaskQuery): Promise<TaskPage> {
    const filter = {
      kind: query.kind ?? null,
      states: query.states ? JSON.stringify(query.states) : null,
      createdFrom: query.createdFrom ?? null,
      createdBefore: query.createdBefore ?? null,
      pattern: query.text ? `%${query.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null,
    }
    return this.db
      .transaction(() => {
        const rows = this.statements.listTasks.all({ ...filter, ...orderOf(query), limit: query.limit, offset: query.offset }) as Row[]
        const { total } = this.statements.countListed.get(filter) as { total: number }
        return { tasks: rows.map(toSummary), total }
      })
      .deferred()
  }

  async counts(failedSince: number, now: number, doneSince = failedSince): Promise<TaskCounts> {
    return this.db
      .transaction(() => {
        const byKindAndState = this.statements.countByKindAndState.all() as Array<TaskCounts['byKindAndState'][number]>
        const ended = this.statements.countEndedSince.get({ failedSince, doneSince }) as { failed: number; cancelled: number; succeeded: number; bytes: number }
        const { runAt } = this.statements.oldestDue.get(now) as { runAt: number | null }
        const { startedAt } = this.statements.oldestRunning.get() as { startedAt: number | null }
        return {
          byKindAndState,
          failedSince: ended.failed,
          cancelledSince: ended.cancelled,
          succeededSince: ended.succeeded,
          bytesSince: ended.bytes,
          ...(runAt !== null && { oldestDueAt: runAt }),
          ...(startedAt !== null && { oldestRunningStartedAt: startedAt }),
        }
      })
      .deferred()
  }

  async cancel(id: string, error: Omit<TaskError, 'attempt' | 'at'>, now: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        const row = this.statements.cancelTask.get({ id, now, ...error }) as { attempts: number } | undefined
        if (!row) return false
        this.statements.insertError.run({ id, attempt: row.attempts, now, ...error })
        return true
      })
      .immediate()
  }

  async rerun(id: string, now: number): Promise<{ id: string; created: boolean } | undefined> {
    return this.db
      .transaction(() => {
        const failed = this.statements.dedupeKeyOfFailed.get(id) as { dedupe_key: string } | undefined
        if (!failed) return undefined
        const newId = randomUUID()
        if (this.statements.rerunTask.run({ id, newId, now }).changes === 1) return { id: newId, created: true }
        const active = this.statements.activeByDedupeKey.get(failed.dedupe_key) as { id: string }
        return { id: active.id, created: false }
      })
      .immediate()
  }

  async ping(): Promise<void> {
    this.statements.ping.get()
  }

  async close(): Promise<void> {
    this.db.close()
  }
}
