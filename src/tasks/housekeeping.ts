import type { Logger } from '../observability/index.js'
import type { TaskStore } from './store.js'

export interface HousekeepingOptions {
  readonly leaseMs: number
  readonly retentionMs: number
  readonly now: () => number
  readonly logger: Logger
}

const DAY_MS = 86_400_000
/** Retention is in days: an hourly pass keeps the table within an hour of it. */
const RETENTION_EVERY_MS = 3_600_000

/**
 * Takes back tasks whose worker died (lease expired) and deletes finished tasks past retention.
 * Runs once at start, then on timers that never keep the process alive.
 */
export function startHousekeeping(store: TaskStore, options: HousekeepingOptions): () => void {
  const { logger, now } = options
  const requeue = async (): Promise<void> => {
    const count = await store.requeueExpired(now())
    if (count > 0) logger.warn({ count }, 'took back tasks whose lease expired')
  }
  const expire = async (): Promise<void> => {
    const count = await store.deleteFinishedBefore(now() - options.retentionMs)
    if (count > 0) logger.info({ count }, 'deleted finished tasks past retention')
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
