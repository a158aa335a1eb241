/** What a pool needs to know of its connections (an FTP control connection, an SFTP session). */
export interface PoolOptions<C> {
  /** Opens a connection in a free host slot (see HostLimiter); gives up when `signal` aborts. */
  connect(signal: AbortSignal): Promise<C>
  /** Still able to serve: neither side closed it. */
  isOpen(conn: C): boolean
  /** Closes it and frees its host slot. */
  discard(conn: C): void
  /** Where a connection can tell it was lost while idle: frees its slot at once, not at the idle timeout. */
  onLost?(conn: C, lost: () => void): void
  /** How long an idle connection is kept: it holds a host slot that other tasks may be waiting for. */
  readonly idleMs: number
  readonly maxIdle: number
}

/** A caller waiting for a connection. */
interface Waiter<C> {
  give(conn: C): void
  fail(e: unknown): void
}

/**
 * The connections one backend keeps to its host. A caller gets an idle connection, else a new one
 * once the host has a free slot, or one of ours handed back before that: waiting for the host alone
 * would leave our own pooled connections holding the very slots we wait for.
 */
export class ConnectionPool<C> {
  private readonly idle: C[] = []
  private readonly idleTimers = new Map<C, NodeJS.Timeout>()
  private readonly busy = new Set<C>()
  private readonly waiters: Array<Waiter<C>> = []
  private readonly closing = new AbortController()
  /** Connections being opened, each settled once it is handed out, pooled or, the pool closed, discarded. */
  private readonly opening = new Set<Promise<void>>()

  constructor(private readonly options: PoolOptions<C>) {}

  get closed(): boolean {
    return this.closing.signal.aborted
  }

  /** @throws what `connect` throws, or an Error when the pool closed or `signal` aborted meanwhile. */
  async take(signal: AbortSignal): Promise<C> {
    if (this.closed) throw new Error('backend closed')
    signal.throwIfAborted()
    const conn = this.idleConnection() ?? (await this.connectOrWait(signal))
    if (this.closed || signal.aborted) {
      this.giveBack(conn)
      throw new Error('aborted')
    }
    this.busy.add(conn)
    return conn
  }

  /** Pools a connection again, or closes it when it is not `reusable` (its state is unknown). */
  giveBack(conn: C, reusable = true): void {
    this.busy.delete(conn)
    if (!reusable || this.closed || !this.options.isOpen(conn)) return this.options.discard(conn)
    const waiter = this.waiters.shift()
    if (waiter) return waiter.give(conn)
    if (this.idle.length >= this.options.maxIdle) return this.options.discard(conn)
    this.idleTimers.set(conn, setTimeout(() => this.forget(conn), this.options.idleMs).unref())
    this.idle.push(conn)
  }

  /**
   * Closes every connection; the pool refuses to give out more. Resolves once those still being
   * opened are closed too: each holds a host slot until then.
   */
  async close(): Promise<void> {
    this.closing.abort()
    for (const waiter of this.waiters.splice(0)) waiter.fail(new Error('backend closed'))
    for (const timer of this.idleTimers.values()) clearTimeout(timer)
    this.idleTimers.clear()
    for (const conn of [...this.idle.splice(0), ...this.busy]) this.options.discard(conn)
    this.busy.clear()
    await Promise.all(this.opening)
  }

  private idleConnection(): C | undefined {
    for (let conn = this.idle.pop(); conn !== undefined; conn = this.idle.pop()) {
      clearTimeout(this.idleTimers.get(conn))
      this.idleTimers.delete(conn)
      if (this.options.isOpen(conn)) return conn
      this.options.discard(conn) // the server hung up while it sat idle
    }
    return undefined
  }

  /**
   * Waits for a connection: one being opened, or one handed back first. A new one is opened only
   * when those on their way are fewer than the callers waiting: while the first connections log in,
   * parallel files would otherwise open one each time one of them asked (measured on a far SFTP
   * destination: 13 connections opened for 4 files in flight, each login a dozen round trips).
   * A connection being opened goes on even when one came back first: parallel files need as many
   * as they are, and cancelling kept the pool at one or two (measured: 3× slower per file).
   */
  private connectOrWait(signal: AbortSignal): Promise<C> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<C> = {
        give: (conn) => {
          signal.removeEventListener('abort', drop)
          resolve(conn)
        },
        fail: (e) => {
          signal.removeEventListener('abort', drop)
          reject(e)
        },
      }
      const drop = (): void => {
        this.dropWaiter(waiter)
        reject(signal.reason)
      }
      signal.addEventListener('abort', drop, { once: true })
      this.waiters.push(waiter)
      if (this.opening.size < this.waiters.length) this.open(signal)
    })
  }

  /** Opens a connection for the first waiter (or the idle list); a failure fails a waiter no other opening serves. */
  private open(signal: AbortSignal): void {
    const opening = this.options.connect(AbortSignal.any([signal, this.closing.signal])).then(
      (conn) => {
        // Opened as the pool closed (the abort came too late to stop it): nobody may use it.
        if (this.closed) return this.options.discard(conn)
        this.options.onLost?.(conn, () => this.forget(conn))
        this.giveBack(conn) // to the first waiter, or idle
      },
      (e: unknown) => {
        // This one is no longer on its way (it leaves `opening` just after): one waiter too many learns why.
        if (this.waiters.length > this.opening.size - 1) this.waiters.shift()?.fail(e)
      },
    )
    this.opening.add(opening)
    void opening.then(() => this.opening.delete(opening))
  }

  private dropWaiter(waiter: Waiter<C>): void {
    const i = this.waiters.indexOf(waiter)
    if (i >= 0) this.waiters.splice(i, 1)
  }

  /** Drops an idle connection (timed out, or lost); a busy one is its user's to give back. */
  private forget(conn: C): void {
    const i = this.idle.indexOf(conn)
    if (i < 0) return
    this.idle.splice(i, 1)
    clearTimeout(this.idleTimers.get(conn))
    this.idleTimers.delete(conn)
    this.options.discard(conn)
  }
}
