// Bandwidth caps through a running server: a publish under a cap takes at least as long as the cap
// allows (a lower bound only: the machine is shared); two tasks at once share the cap; a change
// through the admin API applies to a running publish within two seconds; the cap shows in the
// overview, the task's ETA and the metrics; a wrong timetable is refused with the reason.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { call, parseMetrics, sampleValue, taskWhen } from '../admin/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { sha256File, writeLargeFile } from './helpers.js'

const MiB = 1024 * 1024

describe('bandwidth caps', () => {
  let server: TestServer
  let client: ApubiClient
  const source = (name: string) => pathToFileURL(join(server.fileRoot, name)).href
  const published = (name: string) => join(server.dataDir, 'cdn', 'bw', name)

  const setCaps = async (change: unknown) => {
    const response = await fetch(`http://127.0.0.1:${server.port}/admin/api/bandwidth`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(change) })
    return { status: response.status, json: (await response.json()) as any }
  }
  const bytesDone = async (id: string): Promise<number> => (await call(server, `/admin/api/tasks/${id}`)).json.progress.bytesDone

  before(async () => {
    server = await startServer({ env: { APUBI_BANDWIDTH_LIMIT: '10M', APUBI_WORKERS: '2', APUBI_CHECKSUMS: 'none' } })
    client = new ApubiClient(server.url)
    await writeLargeFile(join(server.fileRoot, 'fifty.bin'), 50 * MiB)
    await writeLargeFile(join(server.fileRoot, 'a.bin'), 20 * MiB)
    await writeLargeFile(join(server.fileRoot, 'b.bin'), 20 * MiB)
  })
  after(() => server.stop())

  it('takes no less than 4.25 s to publish 50 MiB under a 10 MiB/s cap, bytes intact', async () => {
    const started = Date.now()
    const id = await client.loadAsset(source('fifty.bin'), 'bw/fifty.bin')
    await taskWhen(server, id, (t) => t.state === 'succeeded')
    const seconds = (Date.now() - started) / 1000
    assert.ok(seconds >= 4.25, `50 MiB at 10 MiB/s took ${seconds} s`)
    assert.equal(await sha256File(published('fifty.bin')), await sha256File(join(server.fileRoot, 'fifty.bin')))
  })

  it('shows the cap in the overview, the task detail (ETA) and the metrics', async () => {
    const overview = (await call(server, '/admin/api/overview')).json
    assert.deepEqual(overview.bandwidth, { overall: { schedule: '10M', changed: false, bytesPerSecond: 10 * MiB, instanceBytesPerSecond: 10 * MiB }, hosts: {}, instanceShare: 1 })
    const metrics = parseMetrics((await call(server, '/metrics')).text)
    assert.equal(sampleValue(metrics, 'apubi_bandwidth_limit_bytes_per_second', { scope: 'overall', host: '' }), 10 * MiB)
    assert.equal(sampleValue(metrics, 'apubi_bandwidth_instance_limit_bytes_per_second', { scope: 'overall', host: '' }), 10 * MiB)
  })

  it('shares the cap between two tasks running at once', async () => {
    const started = Date.now()
    const [a, b] = await Promise.all([client.loadAsset(source('a.bin'), 'bw/a.bin'), client.loadAsset(source('b.bin'), 'bw/b.bin')])
    // While both run, each is told its half of the cap, and its ETA follows from it.
    const running = await taskWhen(server, a, (t) => t.state === 'running' && t.limitBytesPerSecond === 5 * MiB)
    assert.equal(running.limitBytesPerSecond, 5 * MiB)
    const first = await Promise.race([a, b].map((id) => taskWhen(server, id, (t) => t.state === 'succeeded').then(() => id)))
    const other = first === a ? b : a
    // The cap is shared, not taken by one: when one task ends, the other is nearly done too.
    const otherDone = await bytesDone(other)
    assert.ok(otherDone >= 14 * MiB, `when one task ended, the other had ${otherDone} of ${20 * MiB} bytes`)
    await taskWhen(server, other, (t) => t.state === 'succeeded')
    const seconds = (Date.now() - started) / 1000
    assert.ok(seconds >= 3.4, `40 MiB at 10 MiB/s in all took ${seconds} s`)
    assert.equal(await sha256File(published('a.bin')), await sha256File(join(server.fileRoot, 'a.bin')))
  })

  it('follows a change through the admin API within two seconds, down and up', async () => {
    const id = await client.loadAsset(source('fifty.bin'), 'bw/fifty-again.bin')
    await taskWhen(server, id, (t) => t.state === 'running' && t.progress.bytesDone > 2 * MiB)
    // Down to 1 MiB/s: from two seconds after the change, no more than 1 MiB/s (and a small burst).
    const lowered = await setCaps({ overall: '1M' })
    assert.equal(lowered.status, 200, JSON.stringify(lowered.json))
    assert.deepEqual(lowered.json.overall, { schedule: '1M', changed: true, bytesPerSecond: MiB, instanceBytesPerSecond: MiB })
    await sleep(2_000)
    const before = await bytesDone(id)
    await sleep(3_000)
    const slow = (await bytesDone(id)) - before
    assert.ok(slow <= 3.5 * MiB, `${slow} bytes in 3 s at 1 MiB/s`)
    const detail = (await call(server, `/admin/api/tasks/${id}`)).json
    assert.equal(detail.limitBytesPerSecond, MiB)
    const left = detail.progress.bytesTotal - detail.progress.bytesDone
    assert.ok(detail.etaSeconds >= Math.floor(left / MiB), `ETA ${detail.etaSeconds} s for ${left} bytes at 1 MiB/s`)
    // Back to the configured 10 MiB/s: from two seconds after, well above the old cap.
    const reset = await setCaps({ overall: null })
    assert.deepEqual(reset.json.overall, { schedule: '10M', changed: false, bytesPerSecond: 10 * MiB, instanceBytesPerSecond: 10 * MiB })
    await sleep(2_000)
    const resumedAt = await bytesDone(id)
    await sleep(2_000)
    const state = (await call(server, `/admin/api/tasks/${id}`)).json
    const fast = state.state === 'succeeded' ? 50 * MiB - resumedAt : state.progress.bytesDone - resumedAt
    assert.ok(fast > 4 * MiB || state.state === 'succeeded', `${fast} bytes in 2 s after raising the cap from 1 MiB/s to 10 MiB/s`)
    await taskWhen(server, id, (t) => t.state === 'succeeded')
    assert.equal(await sha256File(published('fifty-again.bin')), await sha256File(join(server.fileRoot, 'fifty.bin')))
  })

  it('refuses a wrong timetable with the reason, changing nothing', async () => {
    const answer = await setCaps({ overall: '2M', hosts: { 'origin.example.net': '08:00,4M 19:00,lots' } })
    assert.equal(answer.status, 400)
    assert.equal(answer.json.error.code, 'ERR_REQUEST_INVALID')
    assert.match(answer.json.error.message, /Bandwidth of host origin.example.net: "19:00,lots": rate "lots" is not a size per second/)
    const caps = (await call(server, '/admin/api/bandwidth')).json
    assert.equal(caps.overall.schedule, '10M')
    assert.deepEqual(caps.hosts, {})
    const shape = await setCaps({ overall: 5 })
    assert.equal(shape.status, 400)
    assert.match(shape.json.error.message, /overall must be a string or null/)
  })

  it('takes a per-host cap at run time, shown with its timetable', async () => {
    const answer = await setCaps({ hosts: { 'Origin.Example.NET': '08:00,4M 08:01,4M' } })
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.json.hosts['origin.example.net'], { schedule: '08:00,4M 08:01,4M', changed: true, bytesPerSecond: 4 * MiB, instanceBytesPerSecond: 4 * MiB })
    assert.deepEqual((await setCaps({ hosts: { 'origin.example.net': null } })).json.hosts, {})
  })
})
