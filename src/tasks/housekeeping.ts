import type { Logger } from '../observability/index.js'
import type { TaskStore } from './store.js'

/**
 * Runs `work` unless another instance is running the same job right now (then resolves undefined
 * without running it). Instances sharing a database (PostgreSQL) pass one; alone, `work` just runs.
 */
export type Exclusive = <T>(job: string, work: () => Promise<T>) => Promise<T | undefined>

export interface HousekeepingOptions {
  readonly leaseMs: number
  readonly retentionMs: number
  readonly now: () => number
  readonly logger: Logger
  readonly exclusive?: Exclusive
}

const alone: Exclusive = (_, work) => work()

const DAY_MS = 86_400_000
/** Retention is in days: an hourly pass keeps the table within an hour of it. */
const RETENTION_EVERY_MS = 3_600_000

/**
 * Takes back tasks whose worker died (lease expired) and deletes finished tasks past retention.
 * Runs once at start, then on timers that never keep the process alive; each job in one instance
 * at a time (`exclusive`).
 */
export function startHousekeeping(store: TaskStore, options: HousekeepingOptions): () => void {
  const { logger, now } = options
  const exclusive = options.exclusive ?? alone
  const requeue = async (): Promise<void> => {
    const count = await exclusive('requeue-expired', () => store.requeueExpired(now()))
    if (count) logger.warn({ count }, 'took back tasks whose lease expired')
  }
  const expire = async (): Promise<void> => {
    const count = await exclusive('delete-finished', () => store.deleteFinishedBefore(now() - options.retentionMs))
    if (count) logger.info({ count }, 'deleted finished tasks past retention')
  }
  const guarded = (work: () => Promise<void>) => () => work().catch((e) => logger.error({ err: e }, 'housekeeping failed'))
  guarded(requeue)()
  guarded(expire)()
  const timers = [
    setInterval(guarded(requeue), Math.max(100, Math.floor(options.leaseMs / 2))),
    setInterval(guarded(expire), Math.min(RETENTION_EVERY_MS, options.retentionMs)),
  ]
  for (const timer of timers) timer.unref()
  return () => timers.forEach(clearInterval)
}

export function retentionMs(days: number): number {
  return days * DAY_MS
}
