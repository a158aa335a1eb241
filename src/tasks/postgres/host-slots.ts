import pg from 'pg'
import { PublishError } from '../../errors.js'
import { redact, type Logger } from '../../observability/index.js'
import { connectionOptions, hostKey } from './pool.js'
import * as sql from './sql.js'

export interface SharedHostLimiterOptions {
  readonly url: string
  readonly connectionsPerHost: number
  /**
   * While waiting, look again this often even without a notification: slots of an instance that
   * died are freed by the database when its session ends, and nobody announces that.
   */
  readonly recheckMs: number
  readonly logger: Logger
}

/** The backends' HostLimiter (backends/types.ts), and a way to let go of the database session. */
export interface SharedHostLimiter {
  /**
   * Waits for a free slot to `host` across all instances; call the returned function to free it.
   * @throws PublishError ERR_UNREACHABLE when the database cannot be reached (the task retries);
   *   `signal.reason` once it aborts.
   */
  acquire(host: string, signal: AbortSignal): Promise<() => void>
  /** Hosts with connections open or awaited in this process (not the other instances'), for metrics. */
  inUse(): Array<{ readonly host: string; readonly connections: number; readonly waiting: number }>
  close(): Promise<void>
}

interface HostState {
  readonly key: number
  /** Slots this process holds or is trying to take: its own session's locks are re-entrant. */
  readonly held: Set<number>
  /** Bumped whenever a slot of the host may have come free; a waiter compares it with what it saw. */
  changes: number
  readonly waiters: Set<() => void>
  /** Acquires of this process not yet answered. */
  asking: number
}

/**
 * The per-host connection cap across every instance on one database: slot `i` of a host is the
 * advisory lock (hostKey(host), i), held by one database session per instance for as long as the
 * connection is open. A crashed instance's session ends, and the database frees its slots with it:
 * no lease to expire, no row to clean up. A release notifies the other instances' waiters.
 *
 * If that session is lost (database restart, network), its slots are freed while connections are
 * still open: for them the cap is not enforced until they close. It is logged; the next acquire
 * opens a new session.
 */
export function createSharedHostLimiter(options: SharedHostLimiterOptions): SharedHostLimiter {
  const { connectionsPerHost, logger } = options
  const hosts = new Map<string, HostState>()
  let session: Promise<pg.Client> | undefined
  /** The client of `session` once connected; events of an older one are ignored. */
  let current: pg.Client | undefined
  /** Which session the held slots belong to: a release from an older one has nothing left to free. */
  let generation = 0
  let closed = false
  /** Statements on the session run one after another (pg's client is not to be given two at once). */
  let queue: Promise<unknown> = Promise.resolve()
  const run = <R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> => {
    const next = queue.then(async () => (await currentSession()).query<R>(text, values))
    queue = next.catch(() => {})
    return next
  }

  const changed = (state: HostState): void => {
    state.changes++
    for (const wake of state.waiters) wake()
  }

  const lose = (client: pg.Client, why: string): void => {
    if (client !== current) return
    current = undefined
    session = undefined
    generation++
    client.removeAllListeners('notification')
    const open = [...hosts.values()].reduce((n, state) => n + state.held.size, 0)
    if (!closed && open > 0) logger.warn({ open, error: redact(why) }, 'lost the database session holding host connection slots: the cap is not enforced for connections already open')
    for (const state of hosts.values()) {
      state.held.clear()
      changed(state)
    }
    client.end().catch(() => {})
  }

  const connect = async (): Promise<pg.Client> => {
    const client = new pg.Client(connectionOptions(options.url))
    client.on('error', (e) => lose(client, e.message))
    client.on('end', () => lose(client, 'connection ended'))
    client.on('notification', (message) => {
      const key = Number(message.payload)
      for (const state of hosts.values()) if (state.key === key) changed(state)
    })
    try {
      await client.connect()
      current = client
      await client.query(sql.listenHostSlots)
      return client
    } catch (e) {
      current = undefined
      await client.end().catch(() => {})
      throw e
    }
  }

  const currentSession = (): Promise<pg.Client> => {
    if (closed) return Promise.reject(new Error('host limiter closed'))
    if (!session) {
      const opening = connect()
      session = opening
      opening.catch(() => {
        if (session === opening) session = undefined
      })
    }
    return session
  }

  /** Takes a free slot of the host for this session; undefined when every slot is taken. */
  const tryTake = async (state: HostState): Promise<number | undefined> => {
    const start = Math.floor(Math.random() * connectionsPerHost) // spread instances over the slots
    for (let i = 0; i < connectionsPerHost; i++) {
      const slot = (start + i) % connectionsPerHost
      if (state.held.has(slot)) continue
      state.held.add(slot) // reserved before the await: no other acquire of ours tries it meanwhile
      const mine = generation
      let locked = false
      try {
        locked = (await run<{ locked: boolean }>(sql.tryHostSlot, [state.key, slot])).rows[0]?.locked === true
      } catch (e) {
        if (generation === mine) state.held.delete(slot)
        throw new PublishError('ERR_UNREACHABLE', `Database unreachable while taking a connection slot: ${redact((e as Error).message)}`, { cause: e })
      }
      if (generation !== mine) return undefined // the session was lost meanwhile: try again on a new one
      if (locked) return slot
      state.held.delete(slot)
    }
    return undefined
  }

  const release = (state: HostState, slot: number, mine: number): void => {
    if (generation !== mine || !session) return
    run(sql.releaseHostSlot, [state.key, slot])
      .catch(() => {}) // the session is gone, and its locks with it
      .finally(() => {
        if (generation === mine) state.held.delete(slot)
        changed(state)
      })
  }

  /** Resolves when a slot of the host may have come free since `seen`, or after recheckMs. */
  const waitForChange = (state: HostState, seen: number, signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      if (state.changes !== seen) return resolve()
      const done = (): void => {
        clearTimeout(timer)
        state.waiters.delete(wake)
        signal.removeEventListener('abort', onAbort)
      }
      const wake = (): void => {
        done()
        resolve()
      }
      const onAbort = (): void => {
        done()
        reject(signal.reason)
      }
      const timer = setTimeout(wake, options.recheckMs)
      state.waiters.add(wake)
      signal.addEventListener('abort', onAbort, { once: true })
    })

  /** Takes a slot of the host, waiting as long as every one is taken; the function returned frees it. */
  const take = async (state: HostState, signal: AbortSignal): Promise<() => void> => {
    for (;;) {
      const seen = state.changes
      const mine = generation
      const slot = state.held.size < connectionsPerHost ? await tryTake(state) : undefined
      if (slot !== undefined) {
        if (signal.aborted) {
          release(state, slot, mine)
          throw signal.reason
        }
        let released = false
        return () => {
          if (released) return
          released = true
          release(state, slot, mine)
        }
      }
      await waitForChange(state, seen, signal)
    }
  }

  return {
    async acquire(host, signal) {
      signal.throwIfAborted()
      let state = hosts.get(host)
      if (!state) hosts.set(host, (state = { key: hostKey(host), held: new Set(), changes: 0, waiters: new Set(), asking: 0 }))
      state.asking++
      try {
        return await take(state, signal)
      } finally {
        state.asking--
      }
    },
    inUse() {
      return [...hosts]
        .filter(([, state]) => state.held.size > 0 || state.asking > 0)
        .map(([host, state]) => ({ host, connections: state.held.size, waiting: state.asking }))
    },
    async close() {
      closed = true
      const client = await session?.catch(() => undefined)
      session = undefined
      current = undefined
      await client?.end().catch(() => {})
    },
  }
}
