import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import type { BackendContext } from '../backends/index.js'
import type { Location } from './locate.js'
import type { TransferOptions } from './job.js'

/**
 * How long the event loop is watched before a lane is added: long enough to tell waiting from
 * working (a far destination's round trip is 20–80 ms), short enough to reach full speed within the
 * first second of a package.
 */
export const GROW_EVERY_MS = 250
/**
 * Below this share of its time busy, our thread is waiting for the network more than it works: one
 * more file in flight costs little CPU and hides another file's round trips. Above it, more lanes
 * would only queue behind each other for the CPU.
 */
export const IDLE_BELOW = 0.5

/**
 * The lanes of one multi-file copy (files in flight at once). They start at APUBI_PARALLEL_FILES and
 * grow by one, at most every GROW_EVERY_MS, while files wait and our event loop was busy less than
 * IDLE_BELOW of the time since the last look: round trips, not CPU, are the limit then. They stop
 * at the per-host connection cap, since each lane holds a connection on each side (half the cap
 * where both sides are the same host, so that one copy cannot starve itself of slots), and do not
 * grow while anyone in the process waits for a host's connection slot: slots are then what is
 * short, and another lane would only take one from a task that waits.
 */
export class Lanes {
  readonly initial: number
  readonly max: number
  private since: number
  private busy: EventLoopUtilization

  constructor(
    private readonly options: Pick<TransferOptions, 'parallelFiles' | 'connectionsPerHost'> & { readonly backends?: Pick<BackendContext, 'hosts'> },
    sameHost: boolean,
    private readonly clock: { now(): number; eventLoopUtilization(since?: EventLoopUtilization): EventLoopUtilization } = performance,
  ) {
    this.max = Math.max(1, sameHost ? Math.floor(options.connectionsPerHost / 2) : options.connectionsPerHost)
    this.initial = Math.min(options.parallelFiles, this.max)
    this.since = clock.now()
    this.busy = clock.eventLoopUtilization()
  }

  /** Asked as a lane finishes a file with `running` lanes and files still waiting: whether to open one more. */
  grow(running: number): boolean {
    if (running >= this.max) return false
    const now = this.clock.now()
    if (now - this.since < GROW_EVERY_MS) return false
    const used = this.clock.eventLoopUtilization(this.busy).utilization
    this.since = now
    this.busy = this.clock.eventLoopUtilization()
    // Last: the slots are looked at once per look at the clock, not as every file ends.
    return used < IDLE_BELOW && !this.slotsAwaited()
  }

  private slotsAwaited(): boolean {
    return this.options.backends?.hosts.inUse?.().some((host) => host.waiting > 0) ?? false
  }
}

/** Source and destination are reached on the same host: each lane holds two of its connections. */
export function sameHost(source: Location, destination: Location): boolean {
  const a = source.endpoint
  const b = destination.endpoint
  return a.scheme === b.scheme && a.host === b.host && a.port === b.port
}
