import type pg from 'pg'
import { PublishError } from '../../errors.js'
import * as sql from './sql.js'

const FINGERPRINT = 'key_fingerprint'

/**
 * Instances on one database must share one secret key: with different keys identical requests
 * digest differently (two tasks where one was meant) and no instance can open what another sealed.
 * The first instance records its key's fingerprint (an HMAC of a constant, see Sealer.fingerprint:
 * it reveals nothing of the key); one whose fingerprint differs refuses to start.
 * @throws PublishError ERR_SECRET_KEY when this instance's key is not the database's.
 */
export async function checkKeyFingerprint(pool: pg.Pool, fingerprint: string): Promise<void> {
  const { value } = (await pool.query<{ value: string }>(sql.settingOnce, [FINGERPRINT, fingerprint])).rows[0]!
  if (value === fingerprint) return
  const ours = fingerprint === 'none' ? 'this instance has no secret key' : 'this instance has a secret key'
  const theirs = value === 'none' ? 'the database was first used without one' : 'the database was first used with a different one'
  throw new PublishError(
    'ERR_SECRET_KEY',
    `APUBI_SECRET_KEY differs from the key this database is used with (${ours}, ${theirs}): instances with different keys turn identical requests into separate tasks and cannot open each other's sealed credentials. ` +
      `Give every instance the same APUBI_SECRET_KEY (or APUBI_SECRET_KEY_FILE). To change the key on purpose, stop every instance and run DELETE FROM apubi_setting WHERE name = '${FINGERPRINT}'; tasks sealed with the old key then fail with ERR_SECRET_KEY`,
  )
}
