import { createHash } from 'node:crypto'
import pg from 'pg'
import { redact, type Logger } from '../../observability/index.js'

/** bigint (int8): epoch ms, byte counts and `count(*)`, all far below 2^53, so plain numbers. */
const INT8_OID = 20
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

/** Connect timeout: a database that does not answer fails the request instead of hanging it. */
const CONNECT_TIMEOUT_MS = 10_000

/** Options of every connection we open: the same types, timeouts and application name. */
export function connectionOptions(url: string): pg.ClientConfig {
  return { connectionString: url, types, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'apubi-server' }
}

/**
 * The pool the store's statements share. An idle connection that the server drops (restart,
 * failover) is reported here and replaced on next use; it must not take the process down.
 */
export function createPool(url: string, size: number, logger: Logger): pg.Pool {
  const pool = new pg.Pool({ ...connectionOptions(url), max: size, idleTimeoutMillis: 30_000 })
  pool.on('error', (e) => logger.warn({ error: redact(e.message) }, 'an idle database connection failed'))
  return pool
}

/** A stable 64-bit advisory lock key (as text, for `$1::bigint`) for a name of ours. */
export function lockKey(name: string): string {
  return createHash('sha256').update(`apubi:${name}`).digest().readBigInt64BE(0).toString()
}

/** A stable 32-bit key for a host, the first half of a two-part advisory lock (the slot is the second). */
export function hostKey(host: string): number {
  return createHash('sha256').update(`apubi:host:${host}`).digest().readInt32BE(0)
}
