import { setTimeout as sleep } from 'node:timers/promises'
import { asPublishError, PublishError, type Code } from '../errors.js'
import { redact, type Logger } from '../observability/index.js'
import { retryDelayMs } from './retry.js'
import type { TaskStore } from './store.js'
import { RateMeter, type LiveProgress } from './throughput.js'
import { wakeableDelay } from './wakeable-delay.js'
import type { Claimed, InvalidationRecord, PackageSummary, Progress, PublishedFile, Task } from './types.js'

/**
 * What a runner may keep across attempts: the files already published, and a way to add one; and
 * what it reports besides (the requests of an invalidation, a failure that only warns).
 */
export interface FileLog {
  readonly completed: ReadonlyMap<string, PublishedFile>
  record(file: PublishedFile): void
  /** A request to a cache or CDN and its answer. */
  invalidated?(call: InvalidationRecord): void
  /** A failure that does not fail the task (an invalidation whose base only warns). */
  warned?(error: PublishError): void
  /** The work moved on to another step (shown in live progress). */
  step?(step: TaskStep): void
}

/** What a task's work ends with: the final DestinationAsset, and what was verified of a streaming package. */
export interface TaskResult {
  readonly finalDestination: string
  readonly package?: PackageSummary
}

/** What a running task is doing: copying or removing files, then telling caches and CDNs. */
export type TaskStep = 'transfer' | 'invalidating'

/** Does a task's work; resolves with the final DestinationAsset (or more). Must give up when `signal` aborts. */
export type TaskRunner = (task: Task, signal: AbortSignal, onProgress: (p: Progress) => void, files: FileLog) => Promise<string | TaskResult>

export interface WorkerOptions {
  /** Identifies this process in leases. */
  readonly name: string
  readonly concurrency: number
  readonly leaseMs: number
  /** An attempt running longer is aborted and fails with ERR_TIMEOUT. */
  readonly taskTimeoutMs: number
  readonly pollMs: number
  readonly retryBaseMs: number
  readonly retryMaxMs: number
  readonly now: () => number
  readonly logger: Logger
  /** Told what happens to tasks, for metrics. */
  readonly observer?: WorkerObserver
  /** The rate a bandwidth cap allows a task now, if one does: its ETA accounts for it. */
  readonly expectedRate?: (taskId: string) => number | undefined
}

/** What the worker tells about the tasks it runs; called synchronously, must not throw. */
export interface WorkerObserver {
  /** A task ended for good under this worker (`code`: why it failed). */
  taskEnded?(task: Task, state: 'succeeded' | 'failed', now: number, code?: Code): void
  /** An attempt failed with a transient error; the task waits to be tried again. */
  taskRetrying?(task: Task, code: Code): void
  /** A file reached its final name. */
  filePublished?(task: Task, file: PublishedFile): void
  /** A cache or CDN answered a request of an invalidation (or did not). */
  invalidated?(task: Task, call: InvalidationRecord): void
  /** An invalidation failed and the task succeeds anyway (its base only warns). */
  invalidationWarned?(task: Task, code: Code): void
}

/** The reason a cancelled task ends with. */
export const CANCELLED_BY_OPERATOR = 'cancelled by operator'

/** Progress reaches the database at most this often: it is for people watching, not for recovery. */
const PROGRESS_WRITE_MS = 1_000

/**
 * Claims due tasks and runs them, `concurrency` at a time, each under a lease renewed every third
 * of its length. States: running → stopping → stopped.
 */
export class Worker {
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  private readonly active = new Map<string, { done: Promise<void>; controller: AbortController; meter: RateMeter; step: TaskStep }>()
  private wakeUp: (() => void) | undefined
  private loop: Promise<void> = Promise.resolve()

  constructor(
    private readonly store: TaskStore,
    private readonly runner: TaskRunner,
    private readonly options: WorkerOptions,
  ) {}

  start(): void {
    if (this.state !== 'idle') return
    this.state = 'running'
    this.loop = this.claimLoop()
  }

  /** Looks for work now rather than at the next poll: a task was just submitted. */
  wake(): void {
    this.wakeUp?.()
  }

  get running(): number {
    return this.active.size
  }

  /** Whether the claim loop runs: false before start and from the beginning of a stop. */
  get accepting(): boolean {
    return this.state === 'running'
  }

  /** Progress, rate and ETA of each task running here, by id. */
  live(): Map<string, LiveProgress> {
    const now = this.options.now()
    const live = new Map<string, LiveProgress>()
    for (const [id, { meter, step }] of this.active) {
      const progress = meter.read(now, this.options.expectedRate?.(id)) ?? (step === 'invalidating' ? { bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0, bytesPerSecond: 0 } : undefined)
      if (progress) live.set(id, { ...progress, step })
    }
    return live
  }

  /**
   * Cancels a task running here: aborts its work with ERR_CANCELLED and resolves once the attempt
   * has ended (temporary files removed, the task FAILED). False when this worker does not run it.
   */
  async cancel(id: string): Promise<boolean> {
    const active = this.active.get(id)
    if (!active) return false
    active.controller.abort(new PublishError('ERR_CANCELLED', CANCELLED_BY_OPERATOR))
    await active.done
    return true
  }

  /**
   * Stops claiming, lets running tasks finish for up to `graceMs`, then aborts the rest and gives
   * them back to the queue without counting the attempt.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.state !== 'running') return
    this.state = 'stopping'
    this.wake()
    await this.loop
    const all = Promise.all([...this.active.values()].map((a) => a.done))
    const timer = sleep(graceMs, 'timeout', { ref: false })
    if ((await Promise.race([all.then(() => 'done'), timer])) === 'timeout') {
      for (const { controller } of this.active.values()) controller.abort(new PublishError('ERR_SHUTDOWN'))
      await all
    }
    this.state = 'stopped'
  }

  private async claimLoop(): Promise<void> {
    const { logger } = this.options
    while (this.state === 'running') {
      let claimed: Claimed | undefined
      if (this.active.size < this.options.concurrency) {
        try {
          claimed = await this.store.claim(this.options.name, this.options.leaseMs, this.options.now())
        } catch (e) {
          logger.error({ err: e }, 'claiming a task failed')
        }
      }
      if (claimed) {
        this.run(claimed)
        continue
      }
      const pause = wakeableDelay(this.options.pollMs)
      this.wakeUp = pause.wake
      await pause.done
      this.wakeUp = undefined
    }
  }

  private run(claimed: Claimed): void {
    const controller = new AbortController()
    // Never fatal: a store that cannot record the outcome leaves the task leased, and
    // housekeeping takes it back once the lease expires.
    const done = this.execute(claimed, controller)
      .catch((e) => this.options.logger.error({ err: e, taskId: claimed.task.id }, 'recording the task outcome failed'))
      .finally(() => {
        this.active.delete(claimed.task.id)
        this.wake()
      })
    this.active.set(claimed.task.id, { done, controller, meter: new RateMeter(), step: 'transfer' })
  }

  private async execute(claimed: Claimed, controller: AbortController): Promise<void> {
    const { store, options } = this
    const { task } = claimed
    const log = options.logger.child({ taskId: task.id, kind: task.kind, attempt: task.attempts })
    const renewal = setInterval(() => {
      store.renew(claimed, options.leaseMs, options.now()).then(
        (kept) => kept || controller.abort(new PublishError('ERR_LEASE_LOST')),
        (e) => log.warn({ err: e }, 'renewing the lease failed'),
      )
    }, Math.max(10, Math.floor(options.leaseMs / 3)))
    const deadline = setTimeout(
      () => controller.abort(new PublishError('ERR_TIMEOUT', `Attempt ${task.attempts} ran longer than ${options.taskTimeoutMs} ms`)),
      options.taskTimeoutMs,
    )
    let lastWrite = 0
    // The furthest it got: a failed or aborted file gives its bytes back in the last reports.
    let furthest: Progress | undefined
    const onProgress = (progress: Progress): void => {
      const now = options.now()
      if (!furthest || progress.bytesDone >= furthest.bytesDone) furthest = progress
      this.active.get(task.id)?.meter.add(now, progress)
      if (now - lastWrite < PROGRESS_WRITE_MS && progress.filesDone < progress.filesTotal) return
      lastWrite = now
      store.progress(claimed, progress, now).catch((e) => log.warn({ err: e }, 'saving progress failed'))
    }
    log.info('task started')
    try {
      let result: TaskResult
      try {
        const completed = new Map((await store.files(task.id)).map((f) => [f.rel, f]))
        const record = (file: PublishedFile): void => {
          log.debug({ file: file.rel, size: file.size, resumedFrom: file.resumedFrom, verifiedBy: file.verifiedBy }, 'file published')
          store.recordFile(claimed, file, options.now()).catch((e) => log.warn({ err: e }, 'recording a file failed'))
          options.observer?.filePublished?.(task, file)
        }
        const invalidated = (call: InvalidationRecord): void => {
          log.info({ provider: call.provider, request: call.request, status: call.status, ok: call.ok }, 'invalidation request')
          store.recordInvalidation(claimed, call, options.now()).catch((e) => log.warn({ err: e }, 'recording an invalidation failed'))
          options.observer?.invalidated?.(task, call)
        }
        const warned = (error: PublishError): void => {
          log.warn({ code: error.code, error: redact(error.message) }, 'invalidation failed; the task succeeds anyway (onFailure: warn)')
          options.observer?.invalidationWarned?.(task, error.code)
        }
        const step = (next: TaskStep): void => {
          const active = this.active.get(task.id)
          if (active) active.step = next
        }
        const returned = await this.runner(task, controller.signal, onProgress, { completed, record, invalidated, warned, step })
        result = typeof returned === 'string' ? { finalDestination: returned } : returned
      } catch (thrown) {
        // A cancelled or failed task shows how far it got, not whatever the last periodic write held.
        if (furthest) await store.progress(claimed, furthest, options.now()).catch((e) => log.warn({ err: e }, 'saving progress failed'))
        return await this.settleFailure(claimed, controller.signal.aborted ? controller.signal.reason : thrown, log)
      }
      // Outside the catch above: a store error while recording a success is not the task's failure.
      const now = options.now()
      const { finalDestination } = result
      if (await store.finish(claimed, { state: 'succeeded', ...result }, now)) {
        log.info({ finalDestination, ...(result.package && { package: result.package }) }, 'task succeeded')
        options.observer?.taskEnded?.(task, 'succeeded', now)
      } else {
        log.warn('lease lost to another worker: result discarded')
      }
    } finally {
      clearInterval(renewal)
      clearTimeout(deadline)
    }
  }

  private async settleFailure(claimed: Claimed, thrown: unknown, log: Logger): Promise<void> {
    const { store, options } = this
    const error = asPublishError(thrown)
    const now = options.now()
    if (error.code === 'ERR_LEASE_LOST') return log.warn('lease lost to another worker: result discarded')
    if (error.code === 'ERR_SHUTDOWN') {
      await store.release(claimed, now)
      return log.info('task released at shutdown')
    }
    if (error.code === 'ERR_INTERNAL') log.error({ err: thrown }, 'task hit an internal error')
    const recorded = { code: error.code, message: redact(error.message) }
    const { attempts, maxAttempts } = claimed.task
    if (error.retryable && attempts < maxAttempts) {
      const runAt = now + retryDelayMs(attempts, options.retryBaseMs, options.retryMaxMs)
      if (await store.finish(claimed, { state: 'retry_wait', error: recorded, runAt }, now)) options.observer?.taskRetrying?.(claimed.task, error.code)
      log.warn({ code: error.code, error: recorded.message, retryInMs: runAt - now }, 'task will retry')
    } else {
      if (await store.finish(claimed, { state: 'failed', error: recorded }, now)) options.observer?.taskEnded?.(claimed.task, 'failed', now, error.code)
      log.warn({ code: error.code, error: recorded.message }, 'task failed')
    }
  }
}
