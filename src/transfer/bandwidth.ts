import { pipeline, Transform, type TransformCallback } from 'node:stream'
import type { Backend } from '../backends/index.js'
import { PublishError } from '../errors.js'
import { overriding } from './backend-override.js'
import { FairBucket } from './fair-bucket.js'

/** A rate that may change with the time of day (config/timetable.ts parses rclone's form). */
export interface Schedule {
  /** As the operator wrote it, normalised. */
  readonly text: string
  /** Bytes per second at `at`; undefined: no limit. */
  rateAt(at: Date): number | undefined
}

/** Turns text into a schedule; throws an Error saying what is wrong. */
export type ParseSchedule = (text: string) => Schedule

/** The caps as configured: rclone timetables, overall and by origin host. */
export interface BandwidthLimits {
  readonly overall?: string
  readonly hosts: Readonly<Record<string, string>>
}

/** A change made at run time: a timetable replaces the configured one, null goes back to it. */
export interface BandwidthChange {
  readonly overall?: string | null
  readonly hosts?: Readonly<Record<string, string | null>>
}

/** The timetables set at run time in place of the configured ones, as the cluster keeps them. */
export interface BandwidthOverrides {
  readonly overall?: string
  readonly hosts: Readonly<Record<string, string>>
}

/** A change with its timetables parsed (undefined: back to the configuration). */
interface ParsedChange {
  readonly overall?: { readonly schedule: Schedule | undefined }
  readonly hosts: ReadonlyArray<{ readonly host: string; readonly text: string | null; readonly schedule: Schedule | undefined }>
}

/** One cap as operators see it. */
export interface CapView {
  /** The timetable in force. */
  readonly schedule: string
  /** Set through the admin API, in place of the configuration (until reset; on SQLite, or restart). */
  readonly changed: boolean
  /** The cap now, across every instance; null while the timetable says off. */
  readonly bytesPerSecond: number | null
  /** What this instance takes of it now (its share of the cluster); null while off. */
  readonly instanceBytesPerSecond: number | null
}

export interface BandwidthView {
  readonly overall?: CapView
  readonly hosts: Readonly<Record<string, CapView>>
  /** This instance's share of every cap: 1 alone; on PostgreSQL, its running tasks over the cluster's. */
  readonly instanceShare: number
}

/** What one task's writes draw from: the overall cap and the cap of each host it writes to. */
export interface TaskBandwidth {
  /** A pass-through stream that lets bytes written to `host` go no faster than the caps allow. */
  throttle(host: string): Transform
}

/**
 * Bytes are metered in slices this size at most: a slice taken on credit delays the next one by
 * slice / rate, so small slices let a lowered cap bite (and a raised one help) at once.
 */
const SLICE_BYTES = 16 * 1024

interface Cap {
  configured?: Schedule
  override?: Schedule
  readonly bucket: FairBucket
}

/**
 * The bandwidth caps of one instance: an overall one and one per origin host, each a timetable,
 * each shared fairly among the tasks writing under it (fair-bucket.ts), and scaled by this instance's
 * share of the cluster. Changeable while tasks run: a running transfer follows at its next slice.
 */
export class Bandwidth {
  private readonly overall: Cap
  private readonly hosts = new Map<string, Cap>()
  private share = 1

  /** @throws Error from `parse` when a configured timetable is wrong (config validated them already). */
  constructor(
    limits: BandwidthLimits,
    private readonly parse: ParseSchedule,
    private readonly now: () => number = Date.now,
  ) {
    this.overall = this.cap(limits.overall)
    for (const [host, text] of Object.entries(limits.hosts)) this.hosts.set(hostKey(host), this.cap(text))
  }

  /**
   * Applies a change made at run time to this instance.
   * @throws PublishError ERR_REQUEST_INVALID naming the timetable that is wrong; nothing is changed then.
   */
  change(change: BandwidthChange): void {
    this.apply(this.parseChange(change))
  }

  /**
   * The change as `change` would apply it, hosts named as the caps key them: changes kept elsewhere
   * (the database) then merge host by host.
   * @throws PublishError ERR_REQUEST_INVALID as `change` does.
   */
  checkChange(change: BandwidthChange): BandwidthChange {
    const { hosts } = this.parseChange(change)
    return { ...(change.overall !== undefined && { overall: change.overall }), ...(change.hosts && { hosts: Object.fromEntries(hosts.map(({ host, text }) => [host, text])) }) }
  }

  /**
   * Puts exactly these run-time timetables in force (as the cluster keeps them): a cap left out goes
   * back to its configured timetable. Nothing is timed again when they are in force already.
   * @throws PublishError ERR_REQUEST_INVALID as `change` does; nothing is changed then.
   */
  override(overrides: BandwidthOverrides): void {
    const wanted = new Map(Object.entries(overrides.hosts).map(([host, text]) => [hostKey(host), text]))
    const resets = [...this.hosts].filter(([host, cap]) => cap.override && !wanted.has(host)).map(([host]) => [host, null])
    const parsed = this.parseChange({ overall: overrides.overall ?? null, hosts: Object.fromEntries([...resets, ...wanted]) })
    const inForce = (cap: Cap | undefined, schedule: Schedule | undefined) => cap?.override?.text === schedule?.text
    if (inForce(this.overall, parsed.overall?.schedule) && parsed.hosts.every(({ host, schedule }) => inForce(this.hosts.get(host), schedule))) return
    this.apply(parsed)
  }

  /** @throws PublishError ERR_REQUEST_INVALID naming the timetable that is wrong. */
  private parseChange(change: BandwidthChange): ParsedChange {
    const parsed = (text: string | null, what: string): Schedule | undefined => {
      if (text === null) return undefined
      try {
        return this.parse(text)
      } catch (e) {
        throw new PublishError('ERR_REQUEST_INVALID', `Bandwidth ${what}: ${(e as Error).message}`)
      }
    }
    return {
      ...(change.overall !== undefined && { overall: { schedule: parsed(change.overall, 'overall') } }),
      hosts: Object.entries(change.hosts ?? {}).map(([host, text]) => ({ host: hostKey(host), text, schedule: parsed(text, `of host ${host}`) })),
    }
  }

  private apply({ overall, hosts }: ParsedChange): void {
    if (overall) this.overall.override = overall.schedule
    for (const { host, schedule } of hosts) {
      const cap = this.hosts.get(host) ?? this.cap(undefined)
      cap.override = schedule
      if (cap.configured || cap.override) this.hosts.set(host, cap)
      else this.hosts.delete(host)
    }
    this.retime()
  }

  /** This instance's part of every cap, in (0, 1]. */
  setShare(share: number): void {
    const next = Math.min(1, Math.max(0.01, share))
    if (next === this.share) return
    this.share = next
    this.retime()
  }

  view(): BandwidthView {
    const at = new Date(this.now())
    const show = (cap: Cap): CapView | undefined => {
      const schedule = cap.override ?? cap.configured
      if (!schedule) return undefined
      const rate = schedule.rateAt(at)
      return { schedule: schedule.text, changed: cap.override !== undefined, bytesPerSecond: rate ?? null, instanceBytesPerSecond: rate === undefined ? null : Math.floor(rate * this.share) }
    }
    const hosts: Record<string, CapView> = {}
    for (const [host, cap] of [...this.hosts].sort(([a], [b]) => a.localeCompare(b))) {
      const view = show(cap)
      if (view) hosts[host] = view
    }
    const overall = show(this.overall)
    return { ...(overall && { overall }), hosts, instanceShare: this.share }
  }

  /** What one task draws from; its id keeps the caps fair between tasks rather than between files. */
  forTask(taskId: string): TaskBandwidth {
    return { throttle: (host) => new Throttle(taskId, [() => this.hosts.get(hostKey(host))?.bucket, () => this.overall.bucket]) }
  }

  /**
   * The rate a task writing now may expect: its fair share of the tightest cap it draws from.
   * Undefined when no cap holds it back (or it is not writing).
   */
  expectedRate(taskId: string): number | undefined {
    const shares = [this.overall, ...this.hosts.values()].map((cap) => cap.bucket.shareOf(taskId)).filter((r): r is number => r !== undefined)
    return shares.length > 0 ? Math.min(...shares) : undefined
  }

  private cap(text: string | undefined): Cap {
    const cap: Cap = {
      ...(text !== undefined && { configured: this.parse(text) }),
      bucket: new FairBucket(() => {
        const rate = (cap.override ?? cap.configured)?.rateAt(new Date(this.now()))
        return rate === undefined ? undefined : rate * this.share
      }, this.now),
    }
    return cap
  }

  /** Rates changed: waiting writers are timed again at once rather than at their old rate. */
  private retime(): void {
    this.overall.bucket.retime()
    for (const cap of this.hosts.values()) cap.bucket.retime()
  }
}

/** Host names compare without case and without a trailing dot. */
function hostKey(host: string): string {
  return host.toLowerCase().replace(/\.$/, '')
}

/** Lets each slice through once every bucket that applies (looked up afresh per slice) granted it. */
class Throttle extends Transform {
  private readonly stopped = new AbortController()

  constructor(
    private readonly taskId: string,
    private readonly buckets: ReadonlyArray<() => FairBucket | undefined>,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    this.pass(chunk).then(() => done(), done)
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    this.stopped.abort(error ?? new Error('stream closed'))
    done(error)
  }

  private async pass(chunk: Buffer): Promise<void> {
    // No cap holds now: the chunk passes whole, as if there were no throttle.
    if (!this.buckets.some((bucket) => bucket()?.limited)) return void this.push(chunk)
    for (let start = 0; start < chunk.length; start += SLICE_BYTES) {
      const slice = chunk.subarray(start, start + SLICE_BYTES)
      for (const bucket of this.buckets) {
        // Synchronous when no cap applies or credit is at hand: no promise per slice then.
        const wait = bucket()?.take(this.taskId, slice.length, this.stopped.signal)
        if (wait) await wait
      }
      this.push(slice)
    }
  }
}

/** `backend` with its writes throttled under the caps of `host` (the endpoint's; the bucket for s3). */
export function throttleWrites(backend: Backend, bandwidth: TaskBandwidth | undefined, host: string): Backend {
  if (!bandwidth) return backend
  return overriding(backend, 'write', (path, body, ...rest) => backend.write(path, pipeline(body, bandwidth.throttle(host), () => {}), ...rest))
}
