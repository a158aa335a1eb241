import type { Logger } from '../../observability/index.js'
import type { Exclusive } from '../housekeeping.js'
import type { BandwidthOverrideStore } from '../shared-bandwidth.js'
import type { TaskStore } from '../store.js'
import { createBandwidthOverrideStore } from './bandwidth-overrides.js'
import { createExclusive } from './exclusive.js'
import { createSharedHostLimiter, type SharedHostLimiter } from './host-slots.js'
import { checkKeyFingerprint } from './key-check.js'
import { migrate } from './migrate.js'
import { createPool } from './pool.js'
import { PostgresTaskStore } from './store.js'
import { waitForDatabase } from './wait.js'

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
  /** How long to wait for a database that does not answer yet (APUBI_DATABASE_WAIT_S); default: no wait. */
  readonly waitMs?: number
  /** The secret key's fingerprint (Sealer.fingerprint), which every instance on the database must share. */
  readonly keyFingerprint?: string
}

/** What several instances share through one PostgreSQL database. */
export interface PostgresDatabase {
  /** Closing it closes every connection of the database, the host slots' session included. */
  readonly store: TaskStore
  /** The per-host connection cap, held across all instances. */
  readonly hosts: SharedHostLimiter
  /** Housekeeping jobs run by one instance at a time. */
  readonly exclusive: Exclusive
  /** The bandwidth timetables set at run time, which every instance applies. */
  readonly bandwidth: BandwidthOverrideStore
}

/**
 * Connects to PostgreSQL, waiting for it up to `waitMs`, migrates its schema (under a lock, so
 * instances starting together do not race) and checks that the secret key is the other instances'.
 * @throws PublishError ERR_DATABASE when the database does not answer in time or the role may not
 *   create the schema, ERR_SECRET_KEY for another key; Error for a newer schema than this server knows.
 */
export async function openPostgres(url: string, options: PostgresOptions): Promise<PostgresDatabase> {
  const { logger } = options
  const pool = createPool(url, options.poolSize, logger)
  try {
    await waitForDatabase(pool, { waitMs: options.waitMs ?? 0, logger })
    const applied = await migrate(pool, options.now())
    if (applied.length > 0) logger.info({ versions: applied }, 'migrated the database schema')
    if (options.keyFingerprint !== undefined) await checkKeyFingerprint(pool, options.keyFingerprint)
  } catch (e) {
    await pool.end()
    throw e
  }
  const hosts = createSharedHostLimiter({ url, connectionsPerHost: options.connectionsPerHost, recheckMs: options.slotRecheckMs ?? SLOT_RECHECK_MS, logger })
  return {
    store: new PostgresTaskStore(pool, () => hosts.close()),
    hosts,
    exclusive: createExclusive(pool),
    bandwidth: createBandwidthOverrideStore(pool),
  }
}
