import type { Progress } from './types.js'

/** A running task's progress as operators watch it: how far, how fast, how long still. */
export interface LiveProgress extends Progress {
  /** Bytes per second over the last few seconds; 0 while nothing flows. */
  readonly bytesPerSecond: number
  /**
   * Seconds left at that rate, or at the bandwidth cap's share when that is lower (the cap just
   * dropped); undefined while the rate is 0 or the total unknown.
   */
  readonly etaSeconds?: number
  /** The task's fair share of the tightest bandwidth cap it writes under; absent: no cap holds it. */
  readonly limitBytesPerSecond?: number
  /** What the task is doing (set by the worker): copying, or telling caches and CDNs afterwards. */
  readonly step?: 'transfer' | 'invalidating'
}

/**
 * Long enough to even out a bursty origin (blocks every few seconds, parallel lanes): over a 5 s
 * window the ETA of such a copy swung between 1 min 27 s and 2 min 4 s within seconds.
 */
const WINDOW_MS = 20_000
/** No byte for this long reads as stalled (rate 0), whatever the window says. */
const STALL_MS = 5_000

/**
 * The byte rate of one task over a sliding window. It keeps the samples of the window plus the last
 * one before it (the baseline), so the rate spans the whole window, and falls to 0 when no byte moved
 * for STALL_MS: a stalled transfer shows as stalled, not at its last speed. The ETA is rounded to what
 * it can tell (10 s past 2 min, a minute past 10 min), so that it does not flicker.
 */
export class RateMeter {
  private samples: Array<{ readonly at: number; readonly bytes: number }> = []
  private latest: Progress | undefined
  private movedAt = -Infinity

  constructor(
    private readonly windowMs = WINDOW_MS,
    private readonly stallMs = STALL_MS,
  ) {}

  add(at: number, progress: Progress): void {
    const previous = this.samples[this.samples.length - 1]
    if (!previous || progress.bytesDone !== previous.bytes) this.movedAt = at
    this.latest = progress
    this.samples.push({ at, bytes: progress.bytesDone })
    this.trim(at)
  }

  /**
   * The latest progress with its rate and ETA at `now`; undefined before the first report.
   * `limit`: the rate a bandwidth cap allows the task now, if one does.
   */
  read(now: number, limit?: number): LiveProgress | undefined {
    const progress = this.latest
    if (!progress) return undefined
    this.trim(now)
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    const seconds = first && last && first !== last && now - this.movedAt < this.stallMs ? (now - first.at) / 1000 : 0
    // A failed file gives its bytes back: the rate never goes below 0.
    const bytesPerSecond = seconds > 0 ? Math.max(0, (last!.bytes - first!.bytes) / seconds) : 0
    const left = progress.bytesTotal - progress.bytesDone
    // The window still remembers the rate before a lowered cap: the cap is what the rest will get.
    const expected = limit === undefined ? bytesPerSecond : Math.min(bytesPerSecond, limit)
    return {
      ...progress,
      bytesPerSecond: Math.round(bytesPerSecond),
      ...(expected > 0 && left >= 0 && progress.bytesTotal > 0 && { etaSeconds: roundEta(left / expected) }),
      ...(limit !== undefined && { limitBytesPerSecond: Math.floor(limit) }),
    }
  }

  private trim(now: number): void {
    while (this.samples.length > 1 && this.samples[1]!.at <= now - this.windowMs) this.samples.shift()
    // Only one sample, older than the window: nothing flowed since.
    if (this.samples.length === 1 && this.samples[0]!.at <= now - this.windowMs) this.samples = []
  }
}

function roundEta(seconds: number): number {
  const step = seconds >= 600 ? 60 : seconds >= 120 ? 10 : 1
  return Math.ceil(seconds / step) * step
}
