import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { Code } from '../../errors.js'
import { redact } from '../../observability/index.js'
import type { TaskStore } from '../store.js'
import type { Claimed, InvalidationRecord, NewTask, Outcome, RecordedInvalidation, Progress, PublishedFile, Task, TaskCounts, TaskError, TaskPage, TaskQuery, TaskState } from '../types.js'
import { orderOf, toSummary, toTask, type Row } from '../rows.js'
import { PostgresOutbox } from './outbox.js'
import * as sql from './sql.js'

/** A task from its row; the metadata pairs as this store keeps them. */
const rowToTask = (row: Row): Task => toTask(row, row['metadata_pairs'] as Task['metadataPairs'])

type Statement = Exclude<keyof typeof sql, 'migrations' | 'hostSlotChannel'>

/** Submit retries this often when the active task it collided with ended before we could read it. */
const SUBMIT_ATTEMPTS = 5

/**
 * The task store on PostgreSQL, shared by every instance on the database. Same contract and
 * semantics as the SQLite store (test/tasks/store-suite.ts runs on both); `onClose` ends what the
 * database handle opened besides the pool (the host slots' session).
 */
export class PostgresTaskStore implements TaskStore {
  /** Per task, the last write made under a lease; the next one waits for it (see `inOrder`). */
  private readonly writes = new Map<string, Promise<unknown>>()
  readonly outbox: PostgresOutbox

  constructor(
    private readonly pool: pg.Pool,
    private readonly onClose: () => Promise<void> = async () => {},
  ) {
    this.outbox = new PostgresOutbox(pool)
  }

  /**
   * Runs the writes of one claimed task in the order they were made. The worker does not wait for
   * some (a published file's record, progress) before the next (the outcome); on SQLite each runs
   * when called, here each takes a pooled connection, and without this a record could arrive after
   * `finish` ended the lease, and be refused.
   */
  private inOrder<T>(claimed: Claimed, write: () => Promise<T>): Promise<T> {
    const id = claimed.task.id
    const next = (this.writes.get(id) ?? Promise.resolve()).then(write, write)
    const settled = next.catch(() => {})
    this.writes.set(id, settled)
    void settled.then(() => {
      if (this.writes.get(id) === settled) this.writes.delete(id)
    })
    return next
  }

  /**
   * Runs a statement of sql.ts as a named prepared statement: each connection parses and plans it
   * once (GetTaskStatus is the hot path).
   */
  private query<R extends pg.QueryResultRow = Row>(name: Statement, values: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>({ name, text: sql[name] as string, values })
  }

  async submit(task: NewTask, now: number) {
    // Two statements, not one: the second needs a snapshot taken after the insert that ours waited
    // for (the concurrent identical submit, of this or another instance) committed.
    for (let attempt = 1; ; attempt++) {
      const id = randomUUID()
      const inserted = await this.query('insertTask', [
        id,
        task.kind,
        task.source ?? null,
        task.destination,
        task.target,
        task.metadataXml ?? null,
        JSON.stringify(task.metadataPairs),
        task.dedupeKey,
        task.maxAttempts,
        now,
        task.shown ? (task.shown.source ?? null) : task.source === undefined ? null : redact(task.source),
        task.shown?.destination ?? redact(task.destination),
        task.shown?.target ?? redact(task.target),
      ])
      if (inserted.rowCount === 1) return { id, created: true }
      const existing = await this.query<{ id: string }>('activeByDedupeKey', [task.dedupeKey])
      if (existing.rows[0]) return { id: existing.rows[0].id, created: false }
      // The active task we collided with ended in between: the next insert goes through.
      if (attempt === SUBMIT_ATTEMPTS) throw new Error(`submit: the task with dedupe key ${task.dedupeKey} kept changing`)
    }
  }

  async get(id: string): Promise<Task | undefined> {
    const row = (await this.query('taskById', [id])).rows[0]
    return row && rowToTask(row)
  }

  async status(id: string) {
    const row = (await this.query<{ state: TaskState; destination: string; final_destination: string | null }>('statusById', [id])).rows[0]
    if (!row) return undefined
    return { state: row.state, destination: row.destination, ...(row.final_destination !== null && { finalDestination: row.final_destination }) }
  }

  async errors(id: string): Promise<TaskError[]> {
    return (await this.query<TaskError>('errorsOfTask', [id])).rows
  }

  async claim(worker: string, leaseMs: number, now: number): Promise<Claimed | undefined> {
    const row = (await this.query('claimNext', [worker, now + leaseMs, now])).rows[0]
    if (!row) return undefined
    const task = rowToTask(row)
    return { task, token: task.leaseToken }
  }

  renew(claimed: Claimed, leaseMs: number, now: number): Promise<boolean> {
    return this.inOrder(claimed, async () => (await this.query('renewLease', [claimed.task.id, claimed.token, now + leaseMs, now])).rowCount === 1)
  }

  progress(claimed: Claimed, progress: Progress, now: number): Promise<boolean> {
    const { bytesDone, bytesTotal, filesDone, filesTotal } = progress
    const values = [claimed.task.id, claimed.token, bytesDone, bytesTotal, filesDone, filesTotal, now]
    return this.inOrder(claimed, async () => (await this.query('saveProgress', values)).rowCount === 1)
  }

  recordFile(claimed: Claimed, file: PublishedFile, now: number): Promise<boolean> {
    const values = [claimed.task.id, claimed.token, file.rel, file.size, file.md5 ?? null, file.sha256 ?? null, file.verifiedBy, file.resumedFrom, now]
    return this.inOrder(claimed, async () => (await this.query('recordFile', values)).rowCount === 1)
  }

  async files(id: string): Promise<PublishedFile[]> {
    const rows = (await this.query('filesOfTask', [id])).rows
    return rows.map((row) => ({
      rel: row['rel'] as string,
      size: row['size'] as number,
      ...(row['md5'] !== null && { md5: row['md5'] as string }),
      ...(row['sha256'] !== null && { sha256: row['sha256'] as string }),
      verifiedBy: row['verified_by'] as PublishedFile['verifiedBy'],
      resumedFrom: row['resumed_from'] as number,
    }))
  }

  recordInvalidation(claimed: Claimed, record: InvalidationRecord, now: number): Promise<boolean> {
    const values = [claimed.task.id, claimed.token, now, record.provider, record.request, record.subject, record.status ?? null, record.answer, record.ok]
    return this.inOrder(claimed, async () => (await this.query('recordInvalidation', values)).rowCount === 1)
  }

  async invalidations(id: string): Promise<RecordedInvalidation[]> {
    const rows = (await this.query<RecordedInvalidation & { status: number | null }>('invalidationsOfTask', [id])).rows
    return rows.map(({ status, ...rest }) => ({ ...rest, ...(status !== null && { status }) }))
  }

  finish(claimed: Claimed, outcome: Outcome, now: number): Promise<boolean> {
    return this.inOrder(claimed, () => this.finishNow(claimed, outcome, now))
  }

  private async finishNow(claimed: Claimed, outcome: Outcome, now: number): Promise<boolean> {
    const error = outcome.state === 'succeeded' ? undefined : outcome.error
    const result = await this.query<{ changed: number }>('finishTask', [
      claimed.task.id,
      claimed.token,
      outcome.state,
      outcome.state === 'succeeded' ? outcome.finalDestination : null,
      error?.code ?? null,
      error?.message ?? null,
      outcome.state === 'retry_wait' ? outcome.runAt : claimed.task.runAt,
      now,
      outcome.state === 'retry_wait' ? null : now,
      outcome.state === 'succeeded' && outcome.package ? JSON.stringify(outcome.package) : null,
    ])
    return result.rows[0]?.changed === 1
  }

  release(claimed: Claimed, now: number): Promise<boolean> {
    return this.inOrder(claimed, async () => (await this.query('releaseTask', [claimed.task.id, claimed.token, now])).rowCount === 1)
  }

  async requeueExpired(now: number): Promise<number> {
    const code: Code = 'ERR_TOO_MANY_ATTEMPTS'
    const result = await this.query<{ changed: number }>('requeueExpired', [now, code, 'Worker lost during its last attempt'])
    return result.rows[0]?.changed ?? 0
  }

  async deleteFinishedBefore(cutoff: number): Promise<number> {
    return (await this.query('deleteFinished', [cutoff])).rowCount ?? 0
  }

  async list(query: TaskQuery): Promise<TaskPage> {
    const pattern = query.text ? `%${query.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null
    const filter = [query.kind ?? null, query.states ?? null, query.createdFrom ?? null, query.createdBefore ?? null, pattern]
    const { sort, direction, activeFirst, now } = orderOf(query)
    const row = (await this.query<{ total: number; tasks: Row[] }>('listTasks', [...filter, query.limit, query.offset, sort, direction, activeFirst, now])).rows[0]!
    return { tasks: row.tasks.map(toSummary), total: row.total }
  }

  async counts(failedSince: number, now: number, doneSince = failedSince): Promise<TaskCounts> {
    type Counts = {
      by_kind_and_state: TaskCounts['byKindAndState']
      failed_since: number
      cancelled_since: number
      succeeded_since: number
      bytes_since: number
      oldest_due_at: number | null
      oldest_running_started_at: number | null
    }
    const row = (await this.query<Counts>('countTasks', [failedSince, now, doneSince])).rows[0]!
    return {
      byKindAndState: row.by_kind_and_state,
      failedSince: row.failed_since,
      cancelledSince: row.cancelled_since,
      succeededSince: row.succeeded_since,
      bytesSince: row.bytes_since,
      ...(row.oldest_due_at !== null && { oldestDueAt: row.oldest_due_at }),
      ...(row.oldest_running_started_at !== null && { oldestRunningStartedAt: row.oldest_running_started_at }),
    }
  }

  async cancel(id: string, error: Omit<TaskError, 'attempt' | 'at'>, now: number): Promise<boolean> {
    return (await this.query<{ changed: number }>('cancelTask', [id, error.code, error.message, now])).rows[0]?.changed === 1
  }

  async rerun(id: string, now: number): Promise<{ id: string; created: boolean } | undefined> {
    for (let attempt = 1; ; attempt++) {
      const failed = (await this.query<{ dedupe_key: string }>('dedupeKeyOfFailed', [id])).rows[0]
      if (!failed) return undefined
      const newId = randomUUID()
      if ((await this.query('rerunTask', [id, newId, now])).rowCount === 1) return { id: newId, created: true }
      const active = (await this.query<{ id: string }>('activeByDedupeKey', [failed.dedupe_key])).rows[0]
      if (active) return { id: active.id, created: false }
      if (attempt === SUBMIT_ATTEMPTS) throw new Error(`rerun: the task with dedupe key ${failed.dedupe_key} kept changing`)
    }
  }

  async ping(): Promise<void> {
    await this.query('ping', [])
  }

  async close(): Promise<void> {
    await this.onClose()
    await this.pool.end()
  }
}
