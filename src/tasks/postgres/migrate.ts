import pg from 'pg'
import { PublishError } from '../../errors.js'
import { lockKey } from './pool.js'
import * as sql from './sql.js'

/**
 * Brings the schema to the newest version this code knows, in one transaction under an advisory
 * lock: instances starting together wait for the first one, then find nothing left to do. A failed
 * migration leaves the schema as it was.
 * @throws Error when the database holds a newer schema than this code knows (a newer server
 *   migrated it): running older code against it could corrupt tasks. PublishError ERR_DATABASE when
 *   the role may not create tables, with the GRANT that fixes it.
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
    if ((e as { code?: string }).code === INSUFFICIENT_PRIVILEGE) throw await cannotCreate(client, e)
    throw e
  } finally {
    client.release()
  }
}

const INSUFFICIENT_PRIVILEGE = '42501'

/**
 * Since PostgreSQL 15 only the database owner may create in schema `public`: a role granted
 * `ALL ON DATABASE` still may not. PostgreSQL says only "permission denied for schema public"; this
 * says what failed, what it needs and the statement to run.
 */
async function cannotCreate(client: pg.PoolClient, e: unknown): Promise<PublishError> {
  const who = await client.query<{ role: string; database: string }>(sql.whoAmI).then((r) => r.rows[0], () => undefined)
  const role = pg.escapeIdentifier(who?.role ?? 'apubi')
  const database = pg.escapeIdentifier(who?.database ?? 'apubi')
  return new PublishError(
    'ERR_DATABASE',
    `The database schema migration failed: role ${role} may not create tables in schema public of database ${database} (${(e as Error).message}). ` +
      'It needs CREATE on the schema, or to own the database (since PostgreSQL 15, ALL ON DATABASE does not include it). ' +
      `As the database owner or a superuser, connected to ${database}, run: GRANT USAGE, CREATE ON SCHEMA public TO ${role}; (or: ALTER DATABASE ${database} OWNER TO ${role};)`,
    { cause: e },
  )
}
