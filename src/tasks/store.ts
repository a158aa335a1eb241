import type { Claimed, NewTask, Outcome, Progress, PublishedFile, Task, TaskError } from './types.js'

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
  status(id: string): Promise<Pick<Task, 'state' | 'destination' | 'finalDestination'> | undefined>
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
  close(): Promise<void>
}
