import type pg from 'pg'
import { PublishError } from '../../errors.js'
import { redact, type Logger } from '../../observability/index.js'
import * as sql from './sql.js'

/** First pause between attempts, doubled each time up to the cap. */
const FIRST_PAUSE_MS = 250
const MAX_PAUSE_MS = 5_000

export interface WaitOptions {
  /** Longest wait for the database to answer (APUBI_DATABASE_WAIT_S); 0: one attempt. */
  readonly waitMs: number
  readonly logger: Logger
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
}

/**
 * Waits until PostgreSQL answers. Under systemd, Kubernetes or compose the database often comes up
 * seconds after the server: a refused or timed-out connection, or a server still starting, is tried
 * again with capped exponential backoff and a log line per attempt. Anything else (a wrong password,
 * a missing database) fails at once: waiting would not change it.
 * @throws PublishError ERR_DATABASE when the database has not answered within `waitMs`; the
 *   original error of any other failure.
 */
export async function waitForDatabase(pool: pg.Pool, options: WaitOptions): Promise<void> {
  const { waitMs, logger, now = Date.now, sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)) } = options
  const started = now()
  for (let attempt = 1, pause = FIRST_PAUSE_MS; ; attempt++, pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    try {
      await pool.query(sql.ping)
      if (attempt > 1) logger.info({ attempt, waitedMs: now() - started }, 'the database answers')
      return
    } catch (e) {
      if (!isNotUpYet(e)) throw e
      const reason = redact((e as Error).message)
      const waited = now() - started
      if (waited + pause > waitMs) {
        throw new PublishError('ERR_DATABASE', `The database did not answer within APUBI_DATABASE_WAIT_S (${Math.round(waitMs / 1000)} s, ${attempt} attempts): ${reason}`, { cause: e })
      }
      logger.warn({ attempt, reason, retryInMs: pause, waitedMs: waited, waitMs }, 'the database does not answer yet; trying again')
      await sleep(pause)
    }
  }
}

/** SQLSTATE classes of a server that is not (yet) taking connections: 08 connection exception, 57P03 starting up. */
const notUpYetStates = /^(08...|57P0[1-3]|53300)$/

/**
 * No connection was made (pg's errors then carry an errno code, or none when its own connect timeout
 * fired), or the server said it cannot take one yet.
 */
function isNotUpYet(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code
  if (typeof code !== 'string') return e instanceof Error && /timeout|terminated/i.test(e.message)
  return /^E[A-Z_]+$/.test(code) || notUpYetStates.test(code)
}
