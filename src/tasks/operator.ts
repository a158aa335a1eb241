import { PublishError } from '../errors.js'
import type { OriginProgress } from '../transfer/index.js'
import { originOutcomes } from './origins.js'
import type { TaskStore } from './store.js'
import type { LiveProgress } from './throughput.js'
import type { Delivery, DeliveryQuery } from './outbox.js'
import { OPERATOR_STATES, type OperatorState, type PublishedFile, type RecordedInvalidation, type Task, type TaskCounts, type TaskError, type TaskQuery, type TaskState, type TaskSummary } from './types.js'
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
  /** A task to a mirrored base: how each origin stands. */
  readonly origins?: readonly OriginProgress[]
}

/** The totals a dashboard heads with and metrics export. */
export interface TaskOverview extends Omit<TaskCounts, 'failedSince' | 'cancelledSince' | 'succeededSince' | 'bytesSince'> {
  /** Tasks by operator state, all kinds together; every state present. */
  readonly byState: Readonly<Record<OperatorState, number>>
  /** Tasks that ended FAILED in the last hour, cancelled ones apart. */
  readonly failedLastHour: number
  readonly cancelledLastHour: number
  /** Tasks that succeeded since the day's start, and the bytes they published. */
  readonly succeededToday: number
  readonly bytesToday: number
  /** Bytes per second of every task running here, together. */
  readonly bytesPerSecond: number
}

/** What a bulk action did to each task of the view it acted on. */
export interface BulkResult {
  /** Tasks of the view the action applies to (at most the query's limit). */
  readonly matched: number
  /** Cancelled tasks; for a re-run, each task and the task that re-runs it. */
  readonly done: ReadonlyArray<{ readonly id: string; readonly newId?: string; readonly created?: boolean }>
  /** Tasks it could not act on (one ended meanwhile, …), with the reason. */
  readonly refused: ReadonlyArray<{ readonly id: string; readonly code: string; readonly message: string }>
}

export interface OperatorServiceOptions {
  readonly store: TaskStore
  readonly worker: Pick<Worker, 'cancel' | 'live'>
  readonly now: () => number
  /** Called after a re-run created a task, so a worker picks it up without waiting for its next poll. */
  readonly onSubmitted: () => void
  /** The base URLs (redacted) of the origins a target is published to, when it is mirrored. */
  readonly originsOf?: (target: string) => readonly string[]
  /** Called after a notification was queued again, so the notifier sends it without waiting. */
  readonly onResent?: () => void
}

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000
const ENDED: ReadonlySet<TaskState> = new Set(['succeeded', 'failed'])
const CANCELLABLE: readonly OperatorState[] = ['queued', 'running', 'retry_wait']
const RERUNNABLE: readonly OperatorState[] = ['failed', 'cancelled']

function notFound(id: string): PublishError {
  return new PublishError('ERR_TASK_NOT_FOUND', `Task Id does not exist: ${id}`)
}

/** What operators may ask of the task engine: listings, details, totals, cancel and re-run. */
export class OperatorService {
  constructor(private readonly options: OperatorServiceOptions) {}

  async list(query: TaskQuery): Promise<{ tasks: ListedTask[]; total: number }> {
    const page = await this.options.store.list({ ...query, now: query.now ?? this.options.now() })
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
    const bases = this.options.originsOf?.(task.target) ?? []
    const origins = bases.length > 1 ? originOutcomes(task, files, live, bases) : undefined
    return { task, errors, files, invalidations, deliveries: deliveries.deliveries, ...(live && { live }), ...(origins && { origins }) }
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

  /** `dayStart`: where "today" begins (epoch ms); the start of the UTC day when absent. */
  async overview(dayStart?: number): Promise<TaskOverview> {
    const now = this.options.now()
    const counts = await this.options.store.counts(now - HOUR_MS, now, dayStart ?? now - (now % DAY_MS))
    const { byKindAndState, oldestDueAt, oldestRunningStartedAt } = counts
    const byState = Object.fromEntries(OPERATOR_STATES.map((state) => [state, 0])) as Record<OperatorState, number>
    for (const { state, count } of byKindAndState) byState[state] += count
    let bytesPerSecond = 0
    for (const live of this.options.worker.live().values()) bytesPerSecond += live.bytesPerSecond
    return {
      byKindAndState,
      byState,
      failedLastHour: counts.failedSince,
      cancelledLastHour: counts.cancelledSince,
      succeededToday: counts.succeededSince,
      bytesToday: counts.bytesSince,
      bytesPerSecond,
      ...(oldestDueAt !== undefined && { oldestDueAt }),
      ...(oldestRunningStartedAt !== undefined && { oldestRunningStartedAt }),
    }
  }

  /** Cancels the tasks of a view that have not ended (up to its limit, from its offset). */
  cancelMatching(query: TaskQuery): Promise<BulkResult> {
    return this.eachMatching(query, CANCELLABLE, async (id) => {
      await this.cancel(id)
      return { id }
    })
  }

  /** Re-runs the failed tasks of a view (cancelled ones too when the view asks for them). */
  rerunMatching(query: TaskQuery): Promise<BulkResult> {
    return this.eachMatching({ ...query, states: query.states ?? ['failed'] }, RERUNNABLE, async (id) => ({ id, ...renamed(await this.rerun(id)) }))
  }

  /** One by one, so that one refusal (a task that ended meanwhile) does not stop the rest. */
  private async eachMatching(query: TaskQuery, applies: readonly OperatorState[], act: (id: string) => Promise<BulkResult['done'][number]>): Promise<BulkResult> {
    const states = (query.states ?? applies).filter((state) => applies.includes(state))
    if (states.length === 0) return { matched: 0, done: [], refused: [] }
    const { tasks } = await this.options.store.list({ ...query, states, now: this.options.now() })
    const done: Array<BulkResult['done'][number]> = []
    const refused: Array<BulkResult['refused'][number]> = []
    for (const { id } of tasks) {
      try {
        done.push(await act(id))
      } catch (e) {
        if (!(e instanceof PublishError)) throw e
        refused.push({ id, code: e.code, message: e.message })
      }
    }
    return { matched: tasks.length, done, refused }
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

const renamed = ({ id, created }: { id: string; created: boolean }) => ({ newId: id, created })

function withLive(task: TaskSummary, live: LiveProgress | undefined): ListedTask {
  return live && task.state === 'running' ? { ...task, live } : task
}
