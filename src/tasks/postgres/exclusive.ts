import type pg from 'pg'
import type { Exclusive } from '../housekeeping.js'
import { lockKey } from './pool.js'
import * as sql from './sql.js'

/**
 * Runs a job in one instance at a time: under a session advisory lock named after the job, taken
 * without waiting. An instance that finds it taken skips its turn (another is doing the same work
 * right now). The lock dies with its session, so a crashed instance never blocks the others.
 */
export function createExclusive(pool: pg.Pool): Exclusive {
  return async (job, work) => {
    const key = lockKey(`job:${job}`)
    const client = await pool.connect()
    let locked = false
    let broken: Error | undefined
    try {
      locked = (await client.query<{ locked: boolean }>(sql.tryLock, [key])).rows[0]?.locked === true
      if (!locked) return undefined
      return await work()
    } finally {
      if (locked) {
        await client.query(sql.unlock, [key]).catch((e: Error) => {
          broken = e // then the connection is closed rather than pooled: that frees the lock
        })
      }
      client.release(broken)
    }
  }
}
