import type { Logger } from '../observability/index.js'
import type { Bandwidth } from '../transfer/index.js'
import type { SharedBandwidth } from './shared-bandwidth.js'
import type { TaskStore } from './store.js'

export interface BandwidthShareOptions {
  readonly store: Pick<TaskStore, 'counts'>
  /** Tasks running in this instance now. */
  readonly running: () => number
  readonly bandwidth: Pick<Bandwidth, 'setShare'>
  /** The caps changed at run time, kept in the database: refreshed on the same beat. */
  readonly overrides: Pick<SharedBandwidth, 'refresh'>
  readonly now: () => number
  readonly logger: Logger
  /** How often the cluster is counted and the caps read: a cap follows a change in either this late. */
  readonly everyMs?: number
}

/** Counting the cluster's running tasks costs one grouped query; twice a second would be plenty. */
const SHARE_EVERY_MS = 2_000

/**
 * On a shared database, makes this instance take its part of every bandwidth cap: its running tasks
 * over those running in the whole cluster (so the caps are shared by tasks, wherever they run).
 * An instance about to start its first task counts itself as one, so it never starts at nothing.
 * A crashed instance's tasks count until housekeeping takes them back (a lease). On the same beat it
 * puts in force the caps changed at run time through any instance. Returns a stop.
 */
export function startBandwidthShare(options: BandwidthShareOptions): () => void {
  const update = async (): Promise<void> => {
    const now = options.now()
    const counts = await options.store.counts(now, now)
    const total = counts.byKindAndState.filter((c) => c.state === 'running').reduce((sum, c) => sum + c.count, 0)
    const mine = Math.max(1, options.running())
    options.bandwidth.setShare(mine / Math.max(mine, total))
  }
  const tick = (): void => {
    void update().catch((e) => options.logger.warn({ err: e }, 'counting running tasks for the bandwidth share failed'))
    void options.overrides.refresh().catch((e) => options.logger.warn({ err: e }, 'putting in force the bandwidth caps changed at run time failed'))
  }
  tick()
  const timer = setInterval(tick, options.everyMs ?? SHARE_EVERY_MS)
  timer.unref()
  return () => clearInterval(timer)
}
