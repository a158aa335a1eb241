import type { Logger } from '../../observability/index.js'
import type { Exclusive } from '../housekeeping.js'
import type { TaskStore } from '../store.js'
import { createExclusive } from './exclusive.js'
import { createSharedHostLimiter, type SharedHostLimiter } from './host-slots.js'
import { migrate } from './migrate.js'
import { createPool } from './pool.js'
import { PostgresTaskStore } from './store.js'

/** A slot freed by a crashed instance is noticed within this; every other release is announced at once. */
const SLOT_RECHECK_MS = 1_000

export interface PostgresOptions {
  /** Connections of the pool the store's statements share. */
  readonly poolSize: number
  readonly connectionsPerHost: number
  /** How often a connection waiting for a host slot looks again without being told (see host-slots.ts). */
  readonly slotRecheckMs?: number
  readonly now: () => number
  readonly logger: Logger
}

/** What several instances share through one PostgreSQL database. */
export interface PostgresDatabase {
  /** Closing it closes every connection of the database, the host slots' session included. */
  readonly store: TaskStore
  /** The per-host connection cap, held across all instances. */
  readonly hosts: SharedHostLimiter
  /** Housekeeping jobs run by one instance at a time. */
  readonly exclusive: Exclusive
}

/**
 * Connects to PostgreSQL and migrates its schema (under a lock, so instances starting together do
 * not race).
 * @throws Error when the database cannot be reached, or holds a newer schema than this server knows.
 */
export async function openPostgres(url: string, options: PostgresOptions): Promise<PostgresDatabase> {
  const { logger } = options
  const pool = createPool(url, options.poolSize, logger)
  try {
    const applied = await migrate(pool, options.now())
    if (applied.length > 0) logger.info({ versions: applied }, 'migrated the database schema')
  } catch (e) {
    await pool.end()
    throw e
  }
  const hosts = createSharedHostLimiter({ url, connectionsPerHost: options.connectionsPerHost, recheckMs: options.slotRecheckMs ?? SLOT_RECHECK_MS, logger })
  return {
    store: new PostgresTaskStore(pool, () => hosts.close()),
    hosts,
    exclusive: createExclusive(pool),
  }
}
