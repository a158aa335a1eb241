// Starting against PostgreSQL as operators meet it: the database comes up after the server, the role
// may not create tables (PostgreSQL 15+), the password holds an '@', two instances were given
// different secret keys. Each against the suite's real PostgreSQL, the server a real process.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'
import { eventually } from './helpers.js'

const KEY_A = randomBytes(32).toString('hex')
const KEY_B = randomBytes(32).toString('hex')

const status = (url: string) => fetch(url).then((r) => r.status, () => 0)

describe('starting against PostgreSQL', { timeout: 240_000 }, () => {
  let db: PostgresServer
  const servers: TestServer[] = []
  const start = async (env: Record<string, string>) => {
    const server = await startServer({ env, started: true })
    servers.push(server)
    return server
  }
  /** A server that must fail at start: its exit code and everything it printed. */
  const failing = async (env: Record<string, string>) => {
    const server = await start(env)
    const code = await server.exited
    return { code, output: server.output() }
  }

  before(async () => {
    db = await startPostgres()
  })
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()))
    await db.stop()
  })

  it('waits for a database that comes up after it: alive but not ready meanwhile, then serves', async () => {
    const url = await db.createDatabase()
    await db.pause()
    const server = await start({ APUBI_DATABASE_URL: url, APUBI_DATABASE_WAIT_S: '120' })
    const base = `http://127.0.0.1:${server.port}`
    await eventually(() => (server.output().includes('the database does not answer yet') ? true : undefined))
    assert.equal(await status(`${base}/healthz`), 200)
    assert.equal(await status(`${base}/readyz`), 503)
    assert.equal(await status(`${base}/apubi?wsdl`), 503)
    assert.equal(server.process.exitCode, null, 'still running while the database is down')

    await db.resume()
    await eventually(async () => ((await status(`${base}/readyz`)) === 200 ? true : undefined))
    const id = await new ApubiClient(server.url).purgeAsset('after-the-wait/')
    assert.match(id, /\S/)
    const attempts = server.output().split('\n').filter((line) => line.includes('the database does not answer yet'))
    assert.ok(attempts.length >= 1, 'one log line per attempt')
    assert.match(attempts[0]!, /"attempt":1\b/)
    assert.match(server.output(), /the database answers/)
  })

  it('gives up after APUBI_DATABASE_WAIT_S and exits non-zero, saying why', async () => {
    const url = await db.createDatabase()
    await db.pause()
    try {
      const { code, output } = await failing({ APUBI_DATABASE_URL: url, APUBI_DATABASE_WAIT_S: '1' })
      assert.notEqual(code, 0)
      assert.match(output, /The database did not answer within APUBI_DATABASE_WAIT_S \(1 s/)
    } finally {
      await db.resume()
    }
  })

  it('names the GRANT a role without CREATE on schema public needs, and starts once it is run', async () => {
    const url = await db.createDatabase()
    const name = new URL(url).pathname.slice(1)
    const role = `tenant_${randomBytes(4).toString('hex')}`
    await db.query(url, `CREATE ROLE ${role} LOGIN PASSWORD 'tenant-pw'`)
    await db.query(url, `GRANT ALL ON DATABASE ${name} TO ${role}`)
    await db.query(url, 'REVOKE CREATE ON SCHEMA public FROM PUBLIC') // PostgreSQL 15+ default, said explicitly
    const asRole = `postgres://${role}:tenant-pw@127.0.0.1:${db.port}/${name}`

    const { code, output } = await failing({ APUBI_DATABASE_URL: asRole })
    assert.notEqual(code, 0)
    assert.match(output, /The database schema migration failed/)
    const grant = new RegExp(`run: (GRANT USAGE, CREATE ON SCHEMA public TO "${role}");`).exec(output)
    assert.ok(grant, output)

    await db.query(url, grant[1]!) // the statement exactly as printed
    const server = await start({ APUBI_DATABASE_URL: asRole })
    await eventually(async () => ((await status(`http://127.0.0.1:${server.port}/readyz`)) === 200 ? true : undefined))
  })

  it("refuses a password with an unencoded '@' without showing any of it, and takes it percent-encoded", async () => {
    const url = await db.createDatabase()
    const name = new URL(url).pathname.slice(1)
    const role = `at_${randomBytes(4).toString('hex')}`
    const password = 'Zq@Vx9-tail-secret'
    await db.query(url, `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`)
    await db.query(url, `ALTER DATABASE ${name} OWNER TO ${role}`)

    const { code, output } = await failing({ APUBI_DATABASE_URL: `postgres://${role}:${password}@127.0.0.1:${db.port}/${name}` })
    assert.notEqual(code, 0)
    assert.match(output, /APUBI_DATABASE_URL.*percent-encode/)
    for (const piece of ['Zq@', 'Vx9', 'tail-secret', 'ENOTFOUND']) assert.ok(!output.includes(piece), `output shows ${piece}:\n${output}`)

    const server = await start({ APUBI_DATABASE_URL: `postgres://${role}:${encodeURIComponent(password)}@127.0.0.1:${db.port}/${name}` })
    await eventually(async () => ((await status(`http://127.0.0.1:${server.port}/readyz`)) === 200 ? true : undefined))
  })

  it('refuses to start an instance whose secret key differs from the one the database is used with', async () => {
    const url = await db.createDatabase()
    const first = await start({ APUBI_DATABASE_URL: url, APUBI_SECRET_KEY: KEY_A })
    await eventually(async () => ((await status(`http://127.0.0.1:${first.port}/readyz`)) === 200 ? true : undefined))

    const { code, output } = await failing({ APUBI_DATABASE_URL: url, APUBI_SECRET_KEY: KEY_B })
    assert.notEqual(code, 0)
    assert.match(output, /APUBI_SECRET_KEY differs from the key this database is used with/)
    assert.ok(!output.includes(KEY_B) && !output.includes(KEY_A))
    const stored = await db.query<{ value: string }>(url, "SELECT value FROM apubi_setting WHERE name = 'key_fingerprint'")
    assert.equal(stored.length, 1)
    assert.ok(!stored[0]!.value.includes(KEY_A) && stored[0]!.value !== Buffer.from(KEY_A, 'hex').toString('base64url'), 'a fingerprint, not the key')

    const keyless = await failing({ APUBI_DATABASE_URL: url })
    assert.notEqual(keyless.code, 0)
    assert.match(keyless.output, /this instance has no secret key/)

    const same = await start({ APUBI_DATABASE_URL: url, APUBI_SECRET_KEY: KEY_A })
    await eventually(async () => ((await status(`http://127.0.0.1:${same.port}/readyz`)) === 200 ? true : undefined))
  })
})

