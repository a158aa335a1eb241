// A bandwidth cap across two instances on one PostgreSQL database: each instance takes the share of
// the cap that its running tasks are of the cluster's, so two tasks on two instances together stay
// under the one cap (a lower bound on time only: the machine is shared). A cap changed through one
// instance's admin API reaches the other, and stays over a restart (it is kept in the database).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { call, taskWhen } from '../admin/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'
import { eventually, sha256File, writeLargeFile } from './helpers.js'

const MiB = 1024 * 1024

describe('bandwidth cap across instances on PostgreSQL', () => {
  let postgres: PostgresServer
  const servers: TestServer[] = []
  /** The second instance, which reads sources from the first one's folder (started again by a test). */
  let startSecond: () => Promise<TestServer>

  before(async () => {
    postgres = await startPostgres()
    const databaseUrl = await postgres.createDatabase('bandwidth')
    const env = { APUBI_DATABASE_URL: databaseUrl, APUBI_BANDWIDTH_LIMIT: '10M', APUBI_WORKERS: '1', APUBI_CHECKSUMS: 'none' }
    servers.push(await startServer({ env }))
    const first = servers[0]!
    startSecond = () => startServer({ env: { ...env, APUBI_FILE_ROOTS: `${first.fileRoot}:${first.dataDir}`, APUBI_CDN_BASE: pathToFileURL(join(first.dataDir, 'cdn')).href + '/' }, fileRoot: first.fileRoot })
    servers.push(await startSecond())
    for (const name of ['one.bin', 'two.bin']) await writeLargeFile(join(servers[0]!.fileRoot, name), 50 * MiB)
  })
  after(async () => {
    for (const server of servers) await server.stop()
    await postgres?.stop()
  })

  it('splits the cap between the instances running tasks, so that together they stay under it', async () => {
    const [first, second] = servers as [TestServer, TestServer]
    const source = (name: string) => pathToFileURL(join(first.fileRoot, name)).href
    const started = Date.now()
    // One worker each: the two tasks run on the two instances.
    const ids = [await new ApubiClient(first.url).loadAsset(source('one.bin'), 'cluster/one.bin'), await new ApubiClient(first.url).loadAsset(source('two.bin'), 'cluster/two.bin')]
    const shares = await eventually(async () => {
      const answers = await Promise.all(servers.map((s) => call(s, '/admin/api/bandwidth')))
      const seen = answers.map((a) => a.json.instanceShare)
      return seen.every((share) => share === 0.5) ? seen : undefined
    }, 30_000, 200)
    assert.deepEqual(shares, [0.5, 0.5])
    const halves = (await call(second, '/admin/api/bandwidth')).json.overall
    assert.deepEqual(halves, { schedule: '10M', changed: false, bytesPerSecond: 10 * MiB, instanceBytesPerSecond: 5 * MiB })
    for (const id of ids) assert.equal((await taskWhen(first, id, (t) => t.state === 'succeeded' || t.state === 'failed')).state, 'succeeded')
    const seconds = (Date.now() - started) / 1000
    // Alone, each instance would take 10 MiB/s: 5 s for both. Shared (counted every 2 s), at least 8 s.
    assert.ok(seconds >= 7.5, `100 MiB under one 10 MiB/s cap on two instances took ${seconds} s`)
    for (const name of ['one.bin', 'two.bin']) assert.equal(await sha256File(join(first.dataDir, 'cdn', 'cluster', name)), await sha256File(join(first.fileRoot, name)))
  })

  it('takes a cap changed through one instance on every instance, and keeps it over a restart', async () => {
    const [first, second] = servers as [TestServer, TestServer]
    const change = async (server: TestServer, body: unknown) => {
      const response = await fetch(`http://127.0.0.1:${server.port}/admin/api/bandwidth`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      return { status: response.status, json: (await response.json()) as any }
    }
    /** The second instance's caps once `seen` holds for them (its refresh runs every 2 s). */
    const caps = (server: TestServer, seen: (json: any) => boolean) =>
      eventually(async () => {
        const json = (await call(server, '/admin/api/bandwidth')).json
        return seen(json) ? json : undefined
      }, 30_000, 200)

    // No task runs now: once both have counted, each instance takes the whole of every cap.
    await eventually(async () => ((await Promise.all(servers.map((s) => call(s, '/admin/api/bandwidth')))).every((a) => a.json.instanceShare === 1) ? true : undefined), 30_000, 200)
    const answer = await change(first, { overall: '4M', hosts: { 'Origin.Example.NET': '08:00,2M 08:01,2M' } })
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.json.overall, { schedule: '4M', changed: true, bytesPerSecond: 4 * MiB, instanceBytesPerSecond: 4 * MiB })
    const onSecond = await caps(second, (json) => json.overall.changed)
    assert.deepEqual(onSecond.overall, { schedule: '4M', changed: true, bytesPerSecond: 4 * MiB, instanceBytesPerSecond: 4 * MiB })
    assert.deepEqual(onSecond.hosts, { 'origin.example.net': { schedule: '08:00,2M 08:01,2M', changed: true, bytesPerSecond: 2 * MiB, instanceBytesPerSecond: 2 * MiB } })

    // Through the second instance now: null goes back to the configuration, what is left out stays.
    assert.equal((await change(second, { hosts: { 'origin.example.net': null } })).status, 200)
    const onFirst = await caps(first, (json) => Object.keys(json.hosts).length === 0)
    assert.deepEqual(onFirst.overall, { schedule: '4M', changed: true, bytesPerSecond: 4 * MiB, instanceBytesPerSecond: 4 * MiB })

    // A wrong timetable is refused by the instance asked, and reaches no other.
    const wrong = await change(first, { overall: '19:00,lots' })
    assert.equal(wrong.status, 400)
    assert.match(wrong.json.error.message, /Bandwidth overall: "19:00,lots": rate "lots" is not a size per second/)

    await second.stop()
    const restarted = await startSecond()
    servers[1] = restarted
    // Before it answers at all, a restarted instance has put the kept change in force.
    const afterRestart = (await call(restarted, '/admin/api/bandwidth')).json
    assert.deepEqual(afterRestart.overall, { schedule: '4M', changed: true, bytesPerSecond: 4 * MiB, instanceBytesPerSecond: 4 * MiB })
    assert.deepEqual(afterRestart.hosts, {})

    assert.equal((await change(restarted, { overall: null })).status, 200)
    const reset = await caps(first, (json) => !json.overall.changed)
    assert.deepEqual(reset.overall, { schedule: '10M', changed: false, bytesPerSecond: 10 * MiB, instanceBytesPerSecond: 10 * MiB })
  })
})
