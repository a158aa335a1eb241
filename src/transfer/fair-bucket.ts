/**
 * Credit a writer may spend at once after an idle spell, in seconds of the rate: enough to smooth the
 * gaps between slices, small enough that a cap holds over any few seconds.
 */
const BURST_SECONDS = 0.1

/** A task that drew nothing for this long no longer counts among those sharing the rate. */
const ACTIVE_MS = 1_000

/** Tasks remembered before the idle ones are forgotten, when nobody asks for shares meanwhile. */
const FORGET_ABOVE = 256

/** Waiting writers are looked at again at least this often, so that a changed rate applies soon. */
const RECHECK_MS = 250

interface Waiter {
  readonly bytes: number
  readonly grant: () => void
}

/**
 * A token bucket shared fairly by tasks: writers wait in one queue per task and are served in turn,
 * one slice per task per round, so a task copying four files at once gets no more than a task copying
 * one. The rate is read at each refill (it follows a timetable, a run-time change and the cluster
 * share); undefined means no limit. A slice may overdraw the credit: the debt delays what follows.
 */
export class FairBucket {
  private credit = 0
  private refilledAt: number
  private readonly queues = new Map<string, Waiter[]>()
  private readonly lastDrew = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly rate: () => number | undefined,
    private readonly now: () => number,
  ) {
    this.refilledAt = now()
  }

  /**
   * Takes `bytes` for `task`: undefined when they may pass now, else a promise that resolves once
   * they may, or rejects with the reason of `signal`'s abort.
   */
  take(task: string, bytes: number, signal: AbortSignal): Promise<void> | undefined {
    const rate = this.refill()
    if (!this.lastDrew.has(task) && this.lastDrew.size >= FORGET_ABOVE) this.forgetIdle()
    this.lastDrew.set(task, this.now())
    if (rate === undefined) return undefined
    if (this.queues.size === 0 && this.credit > 0) {
      this.credit -= bytes
      return undefined
    }
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      const queue = this.queues.get(task) ?? []
      const onAbort = (): void => {
        const index = queue.indexOf(waiter)
        if (index >= 0) queue.splice(index, 1)
        if (queue.length === 0 && this.queues.get(task) === queue) this.queues.delete(task)
        reject(signal.reason)
      }
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      queue.push(waiter)
      this.queues.set(task, queue)
      signal.addEventListener('abort', onAbort, { once: true })
      this.serve()
    })
  }

  /** Whether a rate holds now (false: everything passes at once). */
  get limited(): boolean {
    return this.rate() !== undefined
  }

  /**
   * The rate `task` may expect now: the rate shared equally by the tasks drawing from it lately.
   * Undefined when there is no limit or `task` has not drawn from it lately.
   */
  shareOf(task: string): number | undefined {
    const rate = this.rate()
    this.forgetIdle()
    if (rate === undefined || !this.lastDrew.has(task)) return undefined
    return rate / this.lastDrew.size
  }

  /** The rate may have changed: serve the waiters under the new one now. */
  retime(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.serve()
  }

  /** Tasks that drew nothing lately no longer share the rate (nor take memory). */
  private forgetIdle(): void {
    const since = this.now() - ACTIVE_MS
    for (const [task, at] of this.lastDrew) if (at < since) this.lastDrew.delete(task)
  }

  /** Adds the credit earned since the last refill; returns the rate in force. */
  private refill(): number | undefined {
    const now = this.now()
    const rate = this.rate()
    const elapsedS = Math.max(0, now - this.refilledAt) / 1000
    this.refilledAt = now
    if (rate === undefined) {
      this.credit = 0
      return undefined
    }
    this.credit = Math.min(rate * BURST_SECONDS, this.credit + rate * elapsedS)
    return rate
  }

  /** Grants waiters in turn, one per task per round, while there is credit; else waits for some. */
  private serve(): void {
    const rate = this.refill()
    while (this.queues.size > 0 && (rate === undefined || this.credit > 0)) {
      // A Map iterates in insertion order: a served task goes to the back of the round.
      const [task, queue] = this.queues.entries().next().value as [string, Waiter[]]
      const waiter = queue.shift()!
      this.queues.delete(task)
      if (queue.length > 0) this.queues.set(task, queue)
      if (rate !== undefined) this.credit -= waiter.bytes
      waiter.grant()
    }
    if (this.queues.size === 0 || this.timer) return
    const untilCreditMs = rate === undefined ? 0 : (-this.credit / rate) * 1000
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.serve()
    }, Math.max(1, Math.min(RECHECK_MS, Math.ceil(untilCreditMs))))
    this.timer.unref() // a waiting writer keeps the process busy; this timer need not
  }
}
