import type { Bandwidth, BandwidthChange, BandwidthOverrides, BandwidthView } from '../transfer/index.js'

/** Where the bandwidth timetables set at run time are kept for every instance (postgres/bandwidth-overrides.ts). */
export interface BandwidthOverrideStore {
  read(): Promise<BandwidthOverrides>
  /**
   * Merges `change` into the kept timetables in one step (a timetable replaces, null removes, what is
   * left out stays), so that changes made at once on two instances both count; answers the result.
   */
  change(change: BandwidthChange): Promise<BandwidthOverrides>
}

/**
 * The bandwidth caps as the admin API shows and changes them on a shared database. A change is kept
 * in the database and put in force here at once; `refresh`, which every instance runs every 2 s
 * (bandwidth-share.ts) and once at start, puts in force what the database keeps. So a change made
 * through any instance reaches every one, and one that (re)starts takes it too.
 */
export class SharedBandwidth {
  /** Changes of this instance on their way to the database, and those done: a read made meanwhile may predate them. */
  private changing = 0
  private changed = 0

  constructor(
    private readonly bandwidth: Pick<Bandwidth, 'view' | 'checkChange' | 'override'>,
    private readonly kept: BandwidthOverrideStore,
  ) {}

  view(): BandwidthView {
    return this.bandwidth.view()
  }

  /** @throws PublishError ERR_REQUEST_INVALID for a timetable that is wrong: nothing is kept then. */
  async change(change: BandwidthChange): Promise<void> {
    const checked = this.bandwidth.checkChange(change)
    this.changing++
    try {
      this.bandwidth.override(await this.kept.change(checked))
    } finally {
      this.changing--
      this.changed++
    }
  }

  /**
   * Puts in force what the database keeps; a read that a change of this instance overtook is dropped
   * (the next one brings it).
   * @throws Error when the database cannot be read; PublishError when a kept timetable is wrong.
   */
  async refresh(): Promise<void> {
    if (this.changing > 0) return
    const changed = this.changed
    const kept = await this.kept.read()
    if (this.changing === 0 && this.changed === changed) this.bandwidth.override(kept)
  }
}
