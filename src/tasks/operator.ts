import { PublishError } from '../errors.js'
import type { TaskStore } from './store.js'
import type { LiveProgress } from './throughput.js'
import type { Delivery, DeliveryQuery } from './outbox.js'
import type { PublishedFile, RecordedInvalidation, Task, TaskCounts, TaskError, TaskQuery, TaskState, TaskSummary } from './types.js'
import { CANCELLED_BY_OPERATOR, type Worker } from './worker.js'

/** A listed task, with its live progress while it runs in this process. */
export interface ListedTask extends TaskSummary {
  readonly live?: LiveProgress
}

/** Everything known of one task. Its URLs are as stored (credentials included): redact to show. */
export interface TaskDetail {
  readonly task: Task
  /** Every error it met, oldest first: the attempt history. */
  readonly errors: readonly TaskError[]
  /** The files it published, with their checksums, in path order. */
  readonly files: readonly PublishedFile[]
  /** Its requests to caches and CDNs and their answers, oldest first. */
  readonly invalidations: readonly RecordedInvalidation[]
  /** Its notifications, newest first. */
  readonly deliveries: readonly Delivery[]
  readonly live?: LiveProgress
}

/** The totals a dashboard heads with and metrics export. */
export interface TaskOverview extends Omit<TaskCounts, 'failedSince'> {
  /** Tasks by state, all kinds together; every state present. */
  readonly byState: Readonly<Record<TaskState, number>>
  /** Tasks that ended FAILED in the last hour. */
  readonly failedLastHour: number
  /** Bytes per second of every task running here, together. */
  readonly bytesPerSecond: number
}

export interface OperatorServiceOptions {
  readonly store: TaskStore
  readonly worker: Pick<Worker, 'cancel' | 'live'>
  readonly now: () => number
  /** Called after a re-run created a task, so a worker picks it up without waiting for its next poll. */
  readonly onSubmitted: () => void
  /** Called after a notification was queued again, so the notifier sends it without waiting. */
  readonly onResent?: () => void
}

const HOUR_MS = 3_600_000
const ENDED: ReadonlySet<TaskState> = new Set(['succeeded', 'failed'])

function notFound(id: string): PublishError {
  return new PublishError('ERR_TASK_NOT_FOUND', `Task Id does not exist: ${id}`)
}

/** What operators may ask of the task engine: listings, details, totals, cancel and re-run. */
export class OperatorService {
  constructor(private readonly options: OperatorServiceOptions) {}

  async list(query: TaskQuery): Promise<{ tasks: ListedTask[]; total: number }> {
    const page = await this.options.store.list(query)
    const live = this.options.worker.live()
    return { tasks: page.tasks.map((task) => withLive(task, live.get(task.id))), total: page.total }
  }

  /** @throws PublishError ERR_TASK_NOT_FOUND */
  async detail(id: string): Promise<TaskDetail> {
    const { store, worker } = this.options
    const task = await store.get(id)
    if (!task) throw notFound(id)
    const [errors, files, invalidations, deliveries] = await Promise.all([
      store.errors(id),
      store.files(id),
      store.invalidations(id),
      store.outbox.list({ taskId: id, limit: 100, offset: 0 }),
    ])
    const live = worker.live().get(id)
    return { task, errors, files, invalidations, deliveries: deliveries.deliveries, ...(live && { live }) }
  }

  /** Notifications, newest first, and how many match in all. */
  deliveries(query: DeliveryQuery): Promise<{ deliveries: Delivery[]; total: number }> {
    return this.options.store.outbox.list(query)
  }

  /**
   * Queues a notification to be sent again from its first attempt, whatever became of it.
   * @throws PublishError ERR_TASK_NOT_FOUND when there is no such notification.
   */
  async resend(id: string): Promise<Delivery> {
    const delivery = await this.options.store.outbox.resend(id, this.options.now())
    if (!delivery) throw new PublishError('ERR_TASK_NOT_FOUND', `No notification ${id}`)
    this.options.onResent?.()
    return delivery
  }

  async overview(): Promise<TaskOverview> {
    const now = this.options.now()
    const { byKindAndState, failedSince, oldestDueAt } = await this.options.store.counts(now - HOUR_MS, now)
    const byState: Record<TaskState, number> = { queued: 0, running: 0, retry_wait: 0, succeeded: 0, failed: 0 }
    for (const { state, count } of byKindAndState) byState[state] += count
    let bytesPerSecond = 0
    for (const live of this.options.worker.live().values()) bytesPerSecond += live.bytesPerSecond
    return { byKindAndState, byState, failedLastHour: failedSince, bytesPerSecond, ...(oldestDueAt !== undefined && { oldestDueAt }) }
  }

  /**
   * Ends a task that has not ended: FAILED with ERR_CANCELLED "cancelled by operator". Running work
   * is aborted first and its temporary files removed; resolves with the task once it has ended.
   * @throws PublishError ERR_TASK_NOT_FOUND; ERR_TASK_STATE when it had ended (or ended meanwhile).
   */
  async cancel(id: string): Promise<Task> {
    const { store, worker, now } = this.options
    const before = await store.get(id)
    if (!before) throw notFound(id)
    if (ENDED.has(before.state)) throw new PublishError('ERR_TASK_STATE', `Task ${id} has already ended (${before.state}): there is nothing to cancel`)
    // The worker running it records the end itself; otherwise (queued, waiting to retry, or held by a
    // lease nobody renews) the store ends it and revokes the lease.
    if (!(await worker.cancel(id))) await store.cancel(id, { code: 'ERR_CANCELLED', message: CANCELLED_BY_OPERATOR }, now())
    const after = await store.get(id)
    if (!after) throw notFound(id)
    if (after.state !== 'failed' || after.lastError?.code !== 'ERR_CANCELLED') {
      throw new PublishError('ERR_TASK_STATE', `Task ${id} ended (${after.state}) before it could be cancelled`)
    }
    return after
  }

  /**
   * Submits a FAILED task's request again as a new task (a new TaskId); while an identical task is
   * active, answers its id instead (created: false).
   * @throws PublishError ERR_TASK_NOT_FOUND; ERR_TASK_STATE when the task has not ended FAILED.
   */
  async rerun(id: string): Promise<{ id: string; created: boolean }> {
    const { store, now, onSubmitted } = this.options
    const result = await store.rerun(id, now())
    if (!result) {
      const task = await store.get(id)
      if (!task) throw notFound(id)
      throw new PublishError('ERR_TASK_STATE', `Only a failed task can be re-run; task ${id} is ${task.state}`)
    }
    if (result.created) onSubmitted()
    return result
  }
}

function withLive(task: TaskSummary, live: LiveProgress | undefined): ListedTask {
  return live && task.state === 'running' ? { ...task, live } : task
}
