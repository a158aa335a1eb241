// The admin API against a running server: listing with filters and paging, a task's detail, cancel
// (queued and running, leaving no partial file), re-run, who may do what (tokens, roles, loopback),
// and no credential in any answer.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { eventually, listFiles } from '../e2e/helpers.js'
import { call, nonLoopbackAddress, privateFile, startSlowOrigin, taskWhen, type SlowOrigin } from './helpers.js'

const ORIGIN_PASSWORD = 'Adm1n-api-S3cret'
const METADATA = '<MetaData><metadata key="title">Movie &amp; more</metadata><metadata key="genre">drama</metadata></MetaData>'

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('admin API, no token configured (loopback operators)', () => {
  let server: TestServer
  let client: ApubiClient
  let slow: SlowOrigin
  const ids: Record<string, string> = {}
  let middle = 0

  before(async () => {
    // Every address, so that a client on another address of this machine is not on loopback.
    server = await startServer({ env: { APUBI_HOST: '0.0.0.0', APUBI_WORKERS: '1', APUBI_MAX_ATTEMPTS: '2' } })
    client = new ApubiClient(server.url)
    for (let i = 0; i < 3; i++) writeFileSync(join(server.fileRoot, `ok-${i}.bin`), Buffer.alloc(1000 + i, i))
    const source = (name: string) => pathToFileURL(join(server.fileRoot, name)).href
    ids['ok0'] = await client.loadAsset(source('ok-0.bin'), 'listing/ok-0.bin', METADATA)
    ids['ok1'] = await client.loadAsset(source('ok-1.bin'), 'listing/ok-1.bin')
    await taskWhen(server, ids['ok1'], (t) => t.state === 'succeeded')
    await sleep(5)
    middle = Date.now()
    await sleep(5)
    ids['ok2'] = await client.loadAsset(source('ok-2.bin'), 'listing/ok-2.bin')
    ids['missing'] = await client.loadAsset(source('later.bin'), 'listing/later.bin')
    ids['purge'] = await client.purgeAsset('listing/ok-0.bin')
    for (const id of Object.values(ids)) await taskWhen(server, id, (t) => t.state === 'succeeded' || t.state === 'failed')
    slow = await startSlowOrigin(server.fileRoot, ORIGIN_PASSWORD, 64 * 1024)
    await privateFile(server.fileRoot, 'slow.bin', 4 << 20)
  })
  after(async () => {
    await server.stop()
    await slow.close()
  })

  const list = async (query: string) => {
    const answer = await call(server, `/admin/api/tasks?${query}`)
    assert.equal(answer.status, 200, answer.text)
    return answer.json
  }
  const idsIn = async (query: string) => (await list(query)).tasks.map((t: { id: string }) => t.id)

  it('lists every task newest first, a page at a time, with the total', async () => {
    const all = [ids['purge'], ids['missing'], ids['ok2'], ids['ok1'], ids['ok0']]
    const first = await list('limit=2')
    assert.equal(first.total, 5)
    assert.deepEqual([first.limit, first.offset], [2, 0])
    assert.deepEqual(
      first.tasks.map((t: { id: string }) => t.id),
      all.slice(0, 2),
    )
    assert.deepEqual(await idsIn('limit=2&offset=2'), all.slice(2, 4))
    assert.deepEqual(await idsIn('limit=2&offset=4'), all.slice(4))
    assert.deepEqual(await idsIn('offset=5'), [])
  })

  it('filters by state, kind, creation time and text', async () => {
    assert.deepEqual(await idsIn('state=failed'), [ids['missing']])
    assert.deepEqual(await idsIn('state=succeeded&kind=purge'), [ids['purge']])
    assert.deepEqual(await idsIn('kind=load&q=OK-1'), [ids['ok1']])
    assert.deepEqual(await idsIn(`to=${middle}`), [ids['ok1'], ids['ok0']])
    assert.deepEqual(await idsIn(`from=${new Date(middle).toISOString()}&kind=load`), [ids['missing'], ids['ok2']])
    assert.deepEqual(await idsIn('state=queued,running,retry_wait'), [])
    const listed = (await list(`q=ok-2`)).tasks[0]
    assert.equal(listed.state, 'succeeded')
    assert.equal(listed.status, 'SUCCESS')
    assert.equal(listed.destination, 'listing/ok-2.bin')
    assert.deepEqual(listed.progress, { bytesDone: 1002, bytesTotal: 1002, filesDone: 1, filesTotal: 1 })
  })

  it('refuses a bad filter, naming it', async () => {
    for (const [query, parameter] of [
      ['state=done', 'state'],
      ['kind=copy', 'kind'],
      ['from=yesterday', 'from'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['offset=-1', 'offset'],
    ]) {
      const answer = await call(server, `/admin/api/tasks?${query}`)
      assert.equal(answer.status, 400, query)
      assert.equal(answer.json.error.code, 'ERR_REQUEST_INVALID')
      assert.match(answer.json.error.message, new RegExp(`^Query parameter ${parameter}:`))
    }
  })

  it('details a task: files with checksums, metadata, timings', async () => {
    const answer = await call(server, `/admin/api/tasks/${ids['ok0']}`)
    assert.equal(answer.status, 200)
    const task = answer.json
    assert.equal(task.id, ids['ok0'])
    assert.equal(task.state, 'succeeded')
    assert.equal(task.finalDestination, 'listing/ok-0.bin')
    assert.deepEqual(task.metadata, [
      { key: 'title', value: 'Movie & more' },
      { key: 'genre', value: 'drama' },
    ])
    assert.equal(task.files.length, 1)
    const [file] = task.files
    assert.deepEqual(
      { path: file.path, size: file.size, sha256: file.sha256, resumedFrom: file.resumedFrom },
      { path: 'ok-0.bin', size: 1000, sha256: sha256(Buffer.alloc(1000, 0)), resumedFrom: 0 },
    )
    assert.match(file.md5, /^[0-9a-f]{32}$/)
    assert.deepEqual(task.attemptHistory, [])
    assert.ok(task.timings.elapsedSeconds >= 0 && task.timings.waitedSeconds >= 0)
    assert.ok(Date.parse(task.finishedAt) >= Date.parse(task.createdAt))
  })

  it("details a failed task's attempt history with its reason", async () => {
    const task = (await call(server, `/admin/api/tasks/${ids['missing']}`)).json
    assert.equal(task.state, 'failed')
    assert.equal(task.status, 'FAILED')
    assert.equal(task.lastError.code, 'ERR_NOT_FOUND')
    assert.deepEqual(
      task.attemptHistory.map((e: { attempt: number; code: string }) => [e.attempt, e.code]),
      [[1, 'ERR_NOT_FOUND']],
    )
    assert.match(task.attemptHistory[0].message, /later\.bin/)
  })

  it('answers 404 for an unknown task and route, 405 for a wrong method', async () => {
    const unknown = await call(server, '/admin/api/tasks/no-such-task')
    assert.equal(unknown.status, 404)
    assert.deepEqual(unknown.json.error, { code: 'ERR_TASK_NOT_FOUND', message: 'Task Id does not exist: no-such-task' })
    assert.equal((await call(server, '/admin/api/nothing')).status, 404)
    const wrong = await call(server, `/admin/api/tasks/${ids['ok0']}/cancel`)
    assert.equal(wrong.status, 405)
    assert.equal(wrong.headers['allow'], 'POST')
  })

  it('re-runs a failed task as a new task, which succeeds; only a failed task can be', async () => {
    writeFileSync(join(server.fileRoot, 'later.bin'), 'now it exists')
    const answer = await call(server, `/admin/api/tasks/${ids['missing']}/rerun`, { method: 'POST' })
    assert.equal(answer.status, 201, answer.text)
    assert.equal(answer.json.created, true)
    assert.equal(answer.json.rerunOf, ids['missing'])
    assert.notEqual(answer.json.id, ids['missing'])
    const rerun = await client.waitFor(answer.json.id, 20)
    assert.deepEqual(rerun, { status: 'SUCCESS', destinationAsset: 'listing/later.bin' })
    assert.equal(readFileSync(join(server.dataDir, 'cdn', 'listing', 'later.bin'), 'utf8'), 'now it exists')
    assert.equal((await client.getTaskStatus(ids['missing']!)).status, 'FAILED', 'the failed task stays as it was')

    const refused = await call(server, `/admin/api/tasks/${ids['ok1']}/rerun`, { method: 'POST' })
    assert.equal(refused.status, 409)
    assert.equal(refused.json.error.code, 'ERR_TASK_STATE')
    assert.match(refused.json.error.message, /is succeeded$/)
  })

  it('cancels a queued task (it never runs) and a running one, which leaves no partial file', async () => {
    const running = await client.loadAsset(slow.url('slow.bin'), 'cancel/slow.bin')
    const queued = await client.loadAsset(slow.url('slow.bin'), 'cancel/other.bin')
    const cdn = join(server.dataDir, 'cdn', 'cancel')
    // Running, some bytes written under the temporary name: there is a partial file to remove.
    await taskWhen(server, running, (t) => t.state === 'running' && t.progress.bytesDone > 0)
    await eventually(() => (existsSync(cdn) && readdirSync(cdn).some((name) => name.endsWith('.part')) ? true : undefined))
    assert.equal((await call(server, `/admin/api/tasks/${queued}`)).json.state, 'queued', 'one worker: the second waits')

    const cancelQueued = await call(server, `/admin/api/tasks/${queued}/cancel`, { method: 'POST' })
    assert.equal(cancelQueued.status, 200, cancelQueued.text)
    assert.equal(cancelQueued.json.state, 'cancelled', 'its own state for operators')
    assert.equal(cancelQueued.json.status, 'FAILED', 'FAILED for the WFM')
    assert.equal(cancelQueued.json.attempts, 0, 'never ran')
    assert.deepEqual(cancelQueued.json.lastError, { code: 'ERR_CANCELLED', title: 'Cancelled by operator', message: 'cancelled by operator' })

    const cancelRunning = await call(server, `/admin/api/tasks/${running}/cancel`, { method: 'POST' })
    assert.equal(cancelRunning.status, 200, cancelRunning.text)
    assert.equal(cancelRunning.json.state, 'cancelled')
    assert.deepEqual(cancelRunning.json.lastError, { code: 'ERR_CANCELLED', title: 'Cancelled by operator', message: 'cancelled by operator' })
    assert.ok(cancelRunning.json.progress.bytesDone > 0, 'it shows how far it got')
    const counted = (await call(server, '/admin/api/overview')).json
    assert.equal(counted.byState.cancelled, 2)
    assert.equal(counted.cancelledLastHour, 2)
    assert.equal((await list('state=cancelled')).total, 2)
    assert.equal((await list('state=failed')).tasks.some((t: { id: string }) => t.id === running), false, 'not among the failed')
    assert.deepEqual(
      cancelRunning.json.attemptHistory.map((e: { attempt: number; code: string; message: string }) => [e.attempt, e.code, e.message]),
      [[1, 'ERR_CANCELLED', 'cancelled by operator']],
    )
    // The answer comes once the attempt has ended: the temporary file is already gone.
    assert.deepEqual(await listFiles(cdn), [])
    assert.deepEqual(await client.getTaskStatus(running), { status: 'FAILED' })
    assert.deepEqual(await client.getTaskStatus(queued), { status: 'FAILED' })

    const again = await call(server, `/admin/api/tasks/${running}/cancel`, { method: 'POST' })
    assert.equal(again.status, 409)
    assert.equal(again.json.error.code, 'ERR_TASK_STATE')
    assert.match(server.output(), new RegExp(`"taskId":"${running}".*"task cancelled by operator"`))
  })

  it('finds a task by its full TaskId, its first 8 characters, or the id in capitals', async () => {
    for (const q of [ids['ok1']!, ids['ok1']!.slice(0, 8), ids['ok1']!.toUpperCase()]) assert.deepEqual(await idsIn(`q=${q}`), [ids['ok1']], q)
  })

  it('tells each task its duration, and orders by it; refuses an unknown order', async () => {
    const longest = await list('sort=duration&state=succeeded')
    const durations = longest.tasks.map((t: { durationSeconds: number }) => t.durationSeconds)
    assert.ok(durations.length >= 2 && durations.every((d: number) => d >= 0))
    assert.deepEqual(durations, [...durations].sort((a, b) => b - a))
    const shortest = await list('sort=duration&order=asc&state=succeeded')
    assert.deepEqual(shortest.tasks.map((t: { durationSeconds: number }) => t.durationSeconds), [...durations].sort((a, b) => a - b))
    for (const bad of ['sort=size', 'order=up']) {
      const answer = await call(server, `/admin/api/tasks?${bad}`)
      assert.equal(answer.status, 400)
      assert.match(answer.json.error.message, new RegExp(`^Query parameter ${bad.split('=')[0]}:`))
    }
  })

  it("heads with today's successes and bytes, this instance and its readiness", async () => {
    const overview = (await call(server, `/admin/api/overview?day=${Date.now() - 3_600_000}`)).json
    assert.ok(overview.succeededToday >= 3, JSON.stringify(overview))
    assert.ok(overview.bytesToday >= 3000)
    assert.match(overview.instance.host, /^.+:\d+$/)
    assert.match(overview.instance.version, /^\d+\.\d+\.\d+/)
    assert.equal(overview.ready, true)
    assert.deepEqual(overview.checks, { database: true, workers: true })
    assert.equal((await call(server, `/admin/api/overview?day=${Date.now() + 60_000}`)).json.succeededToday, 0)
  })

  it('re-runs every failed task of a view, naming the task each re-runs, then cancels the active ones of a view', async () => {
    const view = 'q=listing/later.bin'
    const failedBefore = await idsIn(`${view}&state=failed`)
    assert.ok(failedBefore.length >= 1)
    const rerun = await call(server, `/admin/api/bulk/rerun?${view}`, { method: 'POST' })
    assert.equal(rerun.status, 200, rerun.text)
    assert.equal(rerun.json.matched, failedBefore.length)
    assert.deepEqual(rerun.json.done.map((d: { id: string }) => d.id).sort(), [...failedBefore].sort())
    for (const { id, newId } of rerun.json.done) assert.equal((await call(server, `/admin/api/tasks/${newId}`)).json.rerunOf, id)
    const newIds = rerun.json.done.map((d: { newId: string }) => d.newId)

    const slowView = 'q=bulk/slow&sort=created'
    for (let i = 0; i < 3; i++) await client.loadAsset(slow.url('slow.bin'), `bulk/slow-${i}.bin`)
    const cancel = await call(server, `/admin/api/bulk/cancel?${slowView}&limit=2`, { method: 'POST' })
    assert.equal(cancel.status, 200, cancel.text)
    assert.deepEqual([cancel.json.matched, cancel.json.done.length, cancel.json.refused.length], [2, 2, 0], 'the count confirmed, no more')
    assert.equal((await list(`${slowView}&state=cancelled`)).total, 2)
    const rest = await call(server, `/admin/api/bulk/cancel?${slowView}`, { method: 'POST' })
    assert.equal(rest.json.done.length, 1)
    assert.equal((await list(`${slowView}&state=cancelled`)).total, 3)
    for (const id of newIds) await taskWhen(server, id, (t) => t.state === 'failed' || t.state === 'succeeded')
  })

  it('shows no credential in any answer or log line, only user:***@', async () => {
    const answers = [
      await call(server, '/admin/api/tasks?limit=200'),
      await call(server, `/admin/api/tasks?q=${ORIGIN_PASSWORD}`),
      ...(await list('q=slow.bin')).tasks.map((t: { id: string }) => call(server, `/admin/api/tasks/${t.id}`)),
      await call(server, '/admin/api/overview'),
      await call(server, '/metrics'),
    ]
    const texts = (await Promise.all(answers)).map((a) => a.text)
    for (const text of [...texts, server.output()]) assert.equal(text.includes(ORIGIN_PASSWORD), false)
    assert.equal((await call(server, `/admin/api/tasks?q=${ORIGIN_PASSWORD}`)).json.total, 0, 'a password cannot be searched for')
    const listed = (await list('q=slow.bin')).tasks[0]
    assert.match(listed.source, /^http:\/\/wfm:\*\*\*@127\.0\.0\.1:\d+\/private\/slow\.bin$/)
  })

  it('answers loopback clients only: another address, or a Host that is not loopback, gets 403', async () => {
    const session = await call(server, '/admin/api/session')
    assert.deepEqual(session.json, { role: 'operator', tokens: false })
    const rebound = await call(server, '/admin/api/tasks', { headers: { Host: `evil.example:${server.port}` } })
    assert.equal(rebound.status, 403)
    assert.equal(rebound.json.error.code, 'ERR_FORBIDDEN')
    const crossSite = await call(server, `/admin/api/tasks/${ids['missing']}/rerun`, { method: 'POST', headers: { Origin: 'http://evil.example' } })
    assert.equal(crossSite.status, 403)
    assert.match(crossSite.json.error.message, /Cross-site/)

    const remote = nonLoopbackAddress()
    if (!remote) {
      console.warn('SKIPPED part: this machine has no non-loopback IPv4 address to call from')
      return
    }
    for (const path of ['/admin/api/tasks', '/admin', '/admin/dashboard.js', '/admin/api/openapi.json', '/metrics']) {
      const answer = await call(server, path, { address: remote, headers: { Host: `${remote}:${server.port}` } })
      assert.equal(answer.status, 403, path)
      assert.equal(answer.json.error.code, 'ERR_FORBIDDEN')
      assert.match(answer.json.error.message, /loopback/)
    }
    assert.equal((await call(server, '/healthz', { address: remote })).status, 200, 'health stays open')
    assert.equal((await call(server, '/admin', { headers: { Host: `localhost:${server.port}` } })).status, 200)
  })
})

describe('admin API with tokens: roles', () => {
  const OPERATOR = 'operator-token-0123456789abcdef'
  const READER = 'reader-token-0123456789abcdef'
  let server: TestServer
  let failed: string

  before(async () => {
    const config = join(tmpdir(), `apubi-admin-${process.pid}.json`)
    writeFileSync(config, JSON.stringify({ adminTokens: [{ token: READER, role: 'read-only' }] }))
    server = await startServer({ env: { APUBI_HOST: '0.0.0.0', APUBI_ADMIN_TOKEN: OPERATOR, APUBI_CONFIG: config } })
    failed = await new ApubiClient(server.url).loadAsset(pathToFileURL(join(server.fileRoot, 'absent.bin')).href, 'absent.bin')
    await taskWhen(server, failed, (t) => t.state === 'failed', READER)
  })
  after(async () => {
    await server.stop()
  })

  it('asks for a token (401, Bearer challenge) and refuses a wrong one, loopback included', async () => {
    for (const token of [undefined, 'not-the-token-at-all-0000']) {
      const answer = await call(server, '/admin/api/tasks', { ...(token && { token }) })
      assert.equal(answer.status, 401)
      assert.equal(answer.json.error.code, 'ERR_UNAUTHENTICATED')
      assert.equal(answer.headers['www-authenticate'], 'Bearer realm="apubi-admin"')
    }
    assert.equal((await call(server, '/metrics')).status, 401)
  })

  it('lets a read-only token look but neither cancel nor re-run', async () => {
    assert.deepEqual((await call(server, '/admin/api/session', { token: READER })).json, { role: 'read-only', tokens: true })
    assert.equal((await call(server, '/admin/api/tasks', { token: READER })).json.total, 1)
    assert.equal((await call(server, `/admin/api/tasks/${failed}`, { token: READER })).status, 200)
    assert.equal((await call(server, '/metrics', { token: READER })).status, 200)
    for (const action of [`tasks/${failed}/cancel`, `tasks/${failed}/rerun`, 'bulk/cancel', 'bulk/rerun?state=failed']) {
      const answer = await call(server, `/admin/api/${action}`, { method: 'POST', token: READER })
      assert.equal(answer.status, 403, action)
      assert.equal(answer.json.error.code, 'ERR_FORBIDDEN')
      assert.match(answer.json.error.message, /read-only/)
    }
    assert.equal((await call(server, '/admin/api/tasks', { token: READER })).json.total, 1, 'no task was made')
  })

  it('lets an operator token re-run', async () => {
    assert.deepEqual((await call(server, '/admin/api/session', { token: OPERATOR })).json, { role: 'operator', tokens: true })
    const answer = await call(server, `/admin/api/tasks/${failed}/rerun`, { method: 'POST', token: OPERATOR })
    assert.equal(answer.status, 201)
    assert.equal((await call(server, '/admin/api/tasks', { token: OPERATOR })).json.total, 2)
  })

  it('serves the page, its script and the API description to anyone (they hold no data)', async () => {
    const remote = nonLoopbackAddress()
    const from = remote ? { address: remote } : {}
    const page = await call(server, '/admin', from)
    assert.equal(page.status, 200)
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/)
    assert.equal((await call(server, '/admin/dashboard.js', from)).status, 200)
    assert.equal((await call(server, '/admin/api/openapi.json', from)).json.openapi, '3.1.0')
    if (remote) assert.equal((await call(server, '/admin/api/tasks', { ...from, token: READER })).status, 200, 'with a token, from anywhere')
    assert.equal(server.output().includes(OPERATOR) || server.output().includes(READER), false, 'no token in the log')
  })
})
