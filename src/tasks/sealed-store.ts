import { isPublishError } from '../errors.js'
import { redact, type Logger } from '../observability/index.js'
import type { Sealer } from './sealing.js'
import type { TaskStatusRow, TaskStore } from './store.js'
import type { Claimed, InvalidationRecord, NewTask, Outcome, Task, TaskError, TaskQuery } from './types.js'

/**
 * A task store that keeps the URLs of tasks sealed at rest (see sealing.ts), over any store engine:
 * it seals the source, the destination as the WFM sent it, the target and the final destination on
 * the way in, and unseals them on the way out, so the rest of the code sees plain values.
 *
 * A task whose URLs cannot be unsealed (sealed with another key, or no key configured) must neither
 * crash the worker nor be claimed again and again: `claim` ends it FAILED with ERR_SECRET_KEY and
 * takes the next one. GetTaskStatus keeps answering: only a SUCCESS needs its DestinationAsset.
 */
export function sealTaskStore(inner: TaskStore, sealer: Sealer, logger: Logger): TaskStore {
  return new SealedTaskStore(inner, sealer, logger)
}

class SealedTaskStore implements TaskStore {
  readonly statusNow?: (id: string) => TaskStatusRow | undefined

  constructor(
    private readonly inner: TaskStore,
    private readonly sealer: Sealer,
    private readonly logger: Logger,
  ) {
    const { statusNow } = inner
    if (statusNow) this.statusNow = (id) => this.unsealed(statusNow(id))
  }

  /**
   * Each status unsealed, by the inner store's object: a store that hands back the same object for a
   * finished task at every poll (SQLite's) has it unsealed once: an AES-GCM unsealing takes about
   * 9 µs, a sixth of a poll's CPU.
   */
  private readonly unsealedStatuses = new WeakMap<TaskStatusRow, TaskStatusRow>()

  async submit(task: NewTask, now: number) {
    const { seal } = this.sealer
    return this.inner.submit(
      {
        ...task,
        // What listings show and search: taken from the plain values, as the sealed ones show nothing.
        shown: task.shown ?? {
          ...(task.source !== undefined && { source: redact(task.source) }),
          destination: redact(task.destination),
          target: redact(task.target),
        },
        ...(task.source !== undefined && { source: seal(task.source) }),
        destination: seal(task.destination),
        target: seal(task.target),
      },
      now,
    )
  }

  /** The task with its URLs unsealed; a URL that cannot be unsealed stays sealed text (opaque, no secret). */
  async get(id: string): Promise<Task | undefined> {
    const task = await this.inner.get(id)
    return task && this.unsealTask(task, (value) => this.unsealOrKeep(value))
  }

  /** @throws PublishError ERR_SECRET_KEY for a succeeded task whose final destination cannot be unsealed. */
  async status(id: string) {
    return this.unsealed(await this.inner.status(id))
  }

  private unsealed(status: TaskStatusRow | undefined): TaskStatusRow | undefined {
    if (!status) return undefined
    let unsealed = this.unsealedStatuses.get(status)
    if (!unsealed) this.unsealedStatuses.set(status, (unsealed = this.unsealStatus(status)))
    return unsealed
  }

  private unsealStatus(status: TaskStatusRow): TaskStatusRow {
    const open = status.state === 'succeeded' ? this.sealer.unseal : (value: string) => this.unsealOrKeep(value)
    return Object.freeze({
      state: status.state,
      destination: open(status.destination),
      ...(status.finalDestination !== undefined && { finalDestination: open(status.finalDestination) }),
    })
  }

  errors(id: string) {
    return this.inner.errors(id)
  }

  async claim(worker: string, leaseMs: number, now: number): Promise<Claimed | undefined> {
    for (;;) {
      const claimed = await this.inner.claim(worker, leaseMs, now)
      if (!claimed) return undefined
      try {
        return { ...claimed, task: this.unsealTask(claimed.task, this.sealer.unseal) }
      } catch (e) {
        if (!isPublishError(e, 'ERR_SECRET_KEY')) throw e
        const error = { code: e.code, message: e.message }
        await this.inner.finish(claimed, { state: 'failed', error }, now)
        this.logger.warn({ taskId: claimed.task.id, code: error.code, error: error.message }, 'task failed')
      }
    }
  }

  renew(claimed: Claimed, leaseMs: number, now: number) {
    return this.inner.renew(claimed, leaseMs, now)
  }

  progress(claimed: Claimed, progress: Parameters<TaskStore['progress']>[1], now: number) {
    return this.inner.progress(claimed, progress, now)
  }

  recordFile(claimed: Claimed, file: Parameters<TaskStore['recordFile']>[1], now: number) {
    return this.inner.recordFile(claimed, file, now)
  }

  files(id: string) {
    return this.inner.files(id)
  }

  recordInvalidation(claimed: Claimed, record: InvalidationRecord, now: number) {
    return this.inner.recordInvalidation(claimed, record, now)
  }

  invalidations(id: string) {
    return this.inner.invalidations(id)
  }

  /** Deliveries hold no secret: their documents show locations redacted. */
  get outbox() {
    return this.inner.outbox
  }

  finish(claimed: Claimed, outcome: Outcome, now: number) {
    const sealed = outcome.state === 'succeeded' ? { ...outcome, finalDestination: this.sealer.seal(outcome.finalDestination) } : outcome
    return this.inner.finish(claimed, sealed, now)
  }

  release(claimed: Claimed, now: number) {
    return this.inner.release(claimed, now)
  }

  requeueExpired(now: number) {
    return this.inner.requeueExpired(now)
  }

  deleteFinishedBefore(cutoff: number) {
    return this.inner.deleteFinishedBefore(cutoff)
  }

  /** Listings show the redacted locations kept beside the sealed ones: nothing to unseal. */
  list(query: TaskQuery) {
    return this.inner.list(query)
  }

  counts(failedSince: number, now: number, doneSince?: number) {
    return this.inner.counts(failedSince, now, doneSince)
  }

  cancel(id: string, error: Omit<TaskError, 'attempt' | 'at'>, now: number) {
    return this.inner.cancel(id, error, now)
  }

  /** The new task copies the failed one's stored values, sealed as they are. */
  rerun(id: string, now: number) {
    return this.inner.rerun(id, now)
  }

  ping() {
    return this.inner.ping()
  }

  close() {
    return this.inner.close()
  }

  private unsealTask(task: Task, open: (value: string) => string): Task {
    return {
      ...task,
      ...(task.source !== undefined && { source: open(task.source) }),
      destination: open(task.destination),
      target: open(task.target),
      ...(task.finalDestination !== undefined && { finalDestination: open(task.finalDestination) }),
    }
  }

  private unsealOrKeep(value: string): string {
    try {
      return this.sealer.unseal(value)
    } catch (e) {
      if (isPublishError(e, 'ERR_SECRET_KEY')) return value
      throw e
    }
  }
}
