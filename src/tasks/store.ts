import type { OutboxStore } from './outbox.js'
import type { Claimed, InvalidationRecord, RecordedInvalidation, NewTask, Outcome, Progress, PublishedFile, Task, TaskCounts, TaskError, TaskPage, TaskQuery } from './types.js'

/** What GetTaskStatus needs of a task. */
export type TaskStatusRow = Pick<Task, 'state' | 'destination' | 'finalDestination'>

/**
 * All the engine sees of persistence. Every time is epoch ms from the caller's clock, so tests move
 * time instead of sleeping. Methods that take a `Claimed` succeed only while its lease token is the
 * task's current one: a worker whose lease was taken cannot overwrite the newer owner's result.
 */
export interface TaskStore {
  /** Creates a task, or returns the id of the active task with the same dedupe key. */
  submit(task: NewTask, now: number): Promise<{ id: string; created: boolean }>
  get(id: string): Promise<Task | undefined>
  /** Just what GetTaskStatus answers, read as cheaply as the store can: it is the hot path. */
  status(id: string): Promise<TaskStatusRow | undefined>
  /**
   * The same, from a store that reads without waiting (SQLite is synchronous); absent where reads
   * wait (PostgreSQL). Each await between the SOAP edge and a synchronous read costs a poll more than
   * the read itself.
   */
  readonly statusNow?: (id: string) => TaskStatusRow | undefined
  /** Every error the task met, oldest first. */
  errors(id: string): Promise<TaskError[]>
  /** Takes the task due longest ago, counting an attempt; undefined when none is due. */
  claim(worker: string, leaseMs: number, now: number): Promise<Claimed | undefined>
  /** Extends the lease; false when it was lost (the worker must stop). */
  renew(claimed: Claimed, leaseMs: number, now: number): Promise<boolean>
  progress(claimed: Claimed, progress: Progress, now: number): Promise<boolean>
  /** Records a file published by the task (replacing an earlier record of the same path). */
  recordFile(claimed: Claimed, file: PublishedFile, now: number): Promise<boolean>
  /** The files a task published, in path order. */
  files(id: string): Promise<PublishedFile[]>
  /** Records a request to a cache or CDN and its answer, under the current attempt. */
  recordInvalidation(claimed: Claimed, record: InvalidationRecord, now: number): Promise<boolean>
  /** The invalidation requests of a task, oldest first. */
  invalidations(id: string): Promise<RecordedInvalidation[]>
  /** The notification outbox, in the same database. */
  readonly outbox: OutboxStore
  finish(claimed: Claimed, outcome: Outcome, now: number): Promise<boolean>
  /** Gives a running task back without counting the attempt (graceful shutdown). */
  release(claimed: Claimed, now: number): Promise<boolean>
  /**
   * Requeues running tasks whose lease expired (their worker died); those already at their last
   * attempt end failed instead, so a task that crashes the process cannot loop forever.
   */
  requeueExpired(now: number): Promise<number>
  /** Deletes finished tasks that ended before `cutoff`. */
  deleteFinishedBefore(cutoff: number): Promise<number>
  /** A page of the tasks matching `query`, in its order, and how many match in all. */
  list(query: TaskQuery): Promise<TaskPage>
  /**
   * Tasks by kind and operator state, those that ended FAILED or were cancelled since `failedSince`,
   * those that succeeded (and their bytes) since `doneSince`, the oldest due at `now`, the longest running.
   */
  counts(failedSince: number, now: number, doneSince?: number): Promise<TaskCounts>
  /**
   * Ends a task that has not ended yet: FAILED with `error`, added to its error history. A queued or
   * retry-waiting task never runs; a running one loses its lease, so its worker's later writes are
   * refused (a worker running the task aborts it itself first, see Worker.cancel). False when the task
   * does not exist or had already ended.
   */
  cancel(id: string, error: Omit<TaskError, 'attempt' | 'at'>, now: number): Promise<boolean>
  /**
   * A new queued task with the request of a FAILED one: same source, destinations, metadata and dedupe
   * key, attempts afresh. While an identical task is active, that task's id (created: false), as
   * `submit` answers. Undefined when `id` is not a FAILED task.
   */
  rerun(id: string, now: number): Promise<{ id: string; created: boolean } | undefined>
  /** Resolves once the database answered a trivial query; rejects when it cannot (readiness probes). */
  ping(): Promise<void>
  close(): Promise<void>
}
