import type { Logger } from '../observability/index.js'
import type { Bandwidth } from '../transfer/index.js'
import type { TaskStore } from './store.js'

export interface BandwidthShareOptions {
  readonly store: Pick<TaskStore, 'counts'>
  /** Tasks running in this instance now. */
  readonly running: () => number
  readonly bandwidth: Pick<Bandwidth, 'setShare'>
  readonly now: () => number
  readonly logger: Logger
  /** How often the cluster is counted: a cap follows a change in the number of running tasks this late. */
  readonly everyMs?: number
}

/** Counting the cluster's running tasks costs one grouped query; twice a second would be plenty. */
const SHARE_EVERY_MS = 2_000

/**
 * On a shared database, makes this instance take its part of every bandwidth cap: its running tasks
 * over those running in the whole cluster (so the caps are shared by tasks, wherever they run).
 * An instance about to start its first task counts itself as one, so it never starts at nothing.
 * A crashed instance's tasks count until housekeeping takes them back (a lease). Returns a stop.
 */
export function startBandwidthShare(options: BandwidthShareOptions): () => void {
  const update = async (): Promise<void> => {
    const now = options.now()
    const counts = await options.store.counts(now, now)
    const total = counts.byKindAndState.filter((c) => c.state === 'running').reduce((sum, c) => sum + c.count, 0)
    const mine = Math.max(1, options.running())
    options.bandwidth.setShare(mine / Math.max(mine, total))
  }
  const guarded = (): void => void update().catch((e) => options.logger.warn({ err: e }, 'counting running tasks for the bandwidth share failed'))
  guarded()
  const timer = setInterval(guarded, options.everyMs ?? SHARE_EVERY_MS)
  timer.unref()
  return () => clearInterval(timer)
}
