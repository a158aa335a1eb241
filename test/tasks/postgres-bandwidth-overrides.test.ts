// The bandwidth caps changed at run time on PostgreSQL (src/tasks/shared-bandwidth.ts and
// postgres/bandwidth-overrides.ts): each handle on one real database stands for one server instance
// with caps of its own. A change made through one is kept in the database, merged with the others
// (even made at once), put in force by the others when they refresh, and by one that starts anew.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parseTimetable } from '../../src/config/index.js'
import { isPublishError } from '../../src/errors.js'
import { createLogger } from '../../src/observability/index.js'
import { openPostgres, type PostgresDatabase } from '../../src/tasks/postgres/database.js'
import { SharedBandwidth } from '../../src/tasks/shared-bandwidth.js'
import { Bandwidth } from '../../src/transfer/index.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'

const logger = createLogger('silent', process.stdout, [])

let server: PostgresServer
before(async () => {
  server = await startPostgres()
})
after(() => server?.stop())

interface Instance {
  readonly caps: SharedBandwidth
  /** The timetables in force, and whether each was changed at run time. */
  schedules(): Record<string, string>
}

/** `count` instances configured with 10M overall and 2M for a.example, on a fresh database; closed after `test`. */
async function instances(count: number, test: (instances: Instance[], start: () => Promise<Instance>) => Promise<void>): Promise<void> {
  const url = await server.createDatabase('caps')
  const opened: PostgresDatabase[] = []
  const start = async (): Promise<Instance> => {
    const database = await openPostgres(url, { poolSize: 4, connectionsPerHost: 2, now: Date.now, logger })
    opened.push(database)
    const bandwidth = new Bandwidth({ overall: '10M', hosts: { 'a.example': '2M' } }, parseTimetable)
    const caps = new SharedBandwidth(bandwidth, database.bandwidth)
    await caps.refresh()
    const schedules = () => {
      const view = caps.view()
      const shown = (cap: { schedule: string; changed: boolean }) => `${cap.schedule}${cap.changed ? ' (changed)' : ''}`
      return { ...(view.overall && { overall: shown(view.overall) }), ...Object.fromEntries(Object.entries(view.hosts).map(([host, cap]) => [host, shown(cap)])) }
    }
    return { caps, schedules }
  }
  try {
    await test(await Promise.all(Array.from({ length: count }, start)), start)
  } finally {
    for (const database of opened) await database.store.close()
    await server.dropDatabase(url)
  }
}

describe('bandwidth caps changed at run time, kept in PostgreSQL', { timeout: 60_000 }, () => {
  it('a change through one instance reaches the other: a timetable replaces, null goes back, what is left out stays', () =>
    instances(2, async ([a, b]) => {
      await a!.caps.change({ overall: '4M', hosts: { 'A.Example': '1M', 'b.example': '08:00,3M 20:00,off' } })
      const changed = { overall: '4M (changed)', 'a.example': '1M (changed)', 'b.example': '08:00,3M 20:00,off (changed)' }
      assert.deepEqual(a!.schedules(), changed, 'in force at once where it was made')
      assert.deepEqual(b!.schedules(), { overall: '10M', 'a.example': '2M' }, 'the other instance has not refreshed yet')
      await b!.caps.refresh()
      assert.deepEqual(b!.schedules(), changed)

      await b!.caps.change({ hosts: { 'a.example': null } })
      await a!.caps.refresh()
      const reset = { overall: '4M (changed)', 'a.example': '2M', 'b.example': '08:00,3M 20:00,off (changed)' }
      assert.deepEqual(a!.schedules(), reset)
      assert.deepEqual(b!.schedules(), reset)

      await a!.caps.change({ overall: null, hosts: { 'b.example': null } })
      await b!.caps.refresh()
      assert.deepEqual(b!.schedules(), { overall: '10M', 'a.example': '2M' })
    }))

  it('changes made at once on two instances all count', () =>
    instances(2, async ([a, b]) => {
      const hosts = Array.from({ length: 20 }, (_, i) => `h${i}.example`)
      await Promise.all(hosts.map((host, i) => (i % 2 === 0 ? a! : b!).caps.change({ hosts: { [host]: `${i + 1}M` } })))
      await Promise.all([a!.caps.refresh(), b!.caps.refresh()])
      const expected = { overall: '10M', 'a.example': '2M', ...Object.fromEntries(hosts.map((host, i) => [host, `${i + 1}M (changed)`])) }
      assert.deepEqual(a!.schedules(), expected)
      assert.deepEqual(b!.schedules(), expected)
    }))

  it('a wrong timetable is refused with the reason, and nothing is kept', () =>
    instances(2, async ([a, b]) => {
      await assert.rejects(a!.caps.change({ overall: '2M', hosts: { 'b.example': '19:00,lots' } }), (e) => isPublishError(e, 'ERR_REQUEST_INVALID') && /Bandwidth of host b.example: "19:00,lots"/.test(e.message))
      await b!.caps.refresh()
      await a!.caps.refresh()
      assert.deepEqual(a!.schedules(), { overall: '10M', 'a.example': '2M' })
      assert.deepEqual(b!.schedules(), { overall: '10M', 'a.example': '2M' })
    }))

  it('an instance that starts anew takes the kept change', () =>
    instances(1, async ([a], start) => {
      await a!.caps.change({ overall: '3M', hosts: { 'c.example': '512K' } })
      const restarted = await start()
      assert.deepEqual(restarted.schedules(), { overall: '3M (changed)', 'a.example': '2M', 'c.example': '512K (changed)' })
    }))
})
