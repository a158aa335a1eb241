import type { Progress } from './types.js'

/** A running task's progress as operators watch it: how far, how fast, how long still. */
export interface LiveProgress extends Progress {
  /** Bytes per second over the last few seconds; 0 while nothing flows. */
  readonly bytesPerSecond: number
  /** Seconds left at that rate; undefined while the rate is 0 or the total unknown. */
  readonly etaSeconds?: number
  /** What the task is doing (set by the worker): copying, or telling caches and CDNs afterwards. */
  readonly step?: 'transfer' | 'invalidating'
}

/** Long enough to smooth the bursts of a copy in parallel lanes, short enough to show a stall soon. */
const WINDOW_MS = 5_000

/**
 * The byte rate of one task over a sliding window. It keeps the samples of the window plus the last
 * one before it (the baseline), so the rate spans the whole window, and falls to 0 when no sample
 * came for a window: a stalled transfer shows as stalled, not at its last speed.
 */
export class RateMeter {
  private samples: Array<{ readonly at: number; readonly bytes: number }> = []
  private latest: Progress | undefined

  constructor(private readonly windowMs = WINDOW_MS) {}

  add(at: number, progress: Progress): void {
    this.latest = progress
    this.samples.push({ at, bytes: progress.bytesDone })
    this.trim(at)
  }

  /** The latest progress with its rate and ETA at `now`; undefined before the first report. */
  read(now: number): LiveProgress | undefined {
    const progress = this.latest
    if (!progress) return undefined
    this.trim(now)
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    const seconds = first && last && first !== last ? (now - first.at) / 1000 : 0
    // A failed file gives its bytes back: the rate never goes below 0.
    const bytesPerSecond = seconds > 0 ? Math.max(0, (last!.bytes - first!.bytes) / seconds) : 0
    const left = progress.bytesTotal - progress.bytesDone
    return {
      ...progress,
      bytesPerSecond: Math.round(bytesPerSecond),
      ...(bytesPerSecond > 0 && left >= 0 && progress.bytesTotal > 0 && { etaSeconds: Math.ceil(left / bytesPerSecond) }),
    }
  }

  private trim(now: number): void {
    while (this.samples.length > 1 && this.samples[1]!.at <= now - this.windowMs) this.samples.shift()
    // Only one sample, older than the window: nothing flowed since.
    if (this.samples.length === 1 && this.samples[0]!.at <= now - this.windowMs) this.samples = []
  }
}
