import type pg from 'pg'
import { lockKey } from './pool.js'
import * as sql from './sql.js'

/**
 * Brings the schema to the newest version this code knows, in one transaction under an advisory
 * lock: instances starting together wait for the first one, then find nothing left to do. A failed
 * migration leaves the schema as it was.
 * @throws Error when the database holds a newer schema than this code knows (a newer server
 *   migrated it): running older code against it could corrupt tasks.
 * @returns the versions applied, oldest first.
 */
export async function migrate(pool: pg.Pool, now: number, migrations: readonly string[] = sql.migrations): Promise<number[]> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query(sql.lockUntilCommit, [lockKey('migrate')])
    await client.query(sql.createMigrationTable)
    const { version } = (await client.query<{ version: number }>(sql.schemaVersion)).rows[0]!
    if (version > migrations.length) {
      throw new Error(`The database schema is at version ${version}, newer than this server knows (${migrations.length}): run the newer apubi-server, or restore a backup taken before the upgrade`)
    }
    const applied: number[] = []
    for (let v = version; v < migrations.length; v++) {
      await client.query(migrations[v]!)
      await client.query(sql.recordMigration, [v + 1, now])
      applied.push(v + 1)
    }
    await client.query('COMMIT')
    return applied
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    client.release()
  }
}
