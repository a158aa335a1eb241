// A bandwidth cap across two instances on one PostgreSQL database: each instance takes the share of
// the cap that its running tasks are of the cluster's, so two tasks on two instances together stay
// under the one cap (a lower bound on time only: the machine is shared).
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

  before(async () => {
    postgres = await startPostgres()
    const databaseUrl = await postgres.createDatabase('bandwidth')
    const env = { APUBI_DATABASE_URL: databaseUrl, APUBI_BANDWIDTH_LIMIT: '10M', APUBI_WORKERS: '1', APUBI_CHECKSUMS: 'none' }
    servers.push(await startServer({ env }))
    // The second instance reads sources from the first one's folder.
    servers.push(await startServer({ env: { ...env, APUBI_FILE_ROOTS: `${servers[0]!.fileRoot}:${servers[0]!.dataDir}`, APUBI_CDN_BASE: pathToFileURL(join(servers[0]!.dataDir, 'cdn')).href + '/' }, fileRoot: servers[0]!.fileRoot }))
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
})
