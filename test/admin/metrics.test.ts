// /metrics, /healthz and /readyz scraped from a running server while it works: the series an
// operations team plugs in, with the values the run must have produced, and labels that stay few.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient, ApubiFault } from '../../src/client/apubi-client.js'
import { createMetrics, createProbeEdge } from '../../src/metrics/index.js'
import { createLogger } from '../../src/observability/logger.js'
import { eventually } from '../e2e/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { call, parseMetrics, privateFile, sampleValue, startSlowOrigin, taskWhen, type Sample, type SlowOrigin } from './helpers.js'

const ORIGIN_PASSWORD = 'Metr1cs-S3cret'
const FAST_BYTES = 50_000

describe('metrics and health of a running server', () => {
  let server: TestServer
  let client: ApubiClient
  let slow: SlowOrigin
  let proxyHost: string

  before(async () => {
    server = await startServer({ env: { APUBI_WORKERS: '1', APUBI_MAX_ATTEMPTS: '3' } })
    client = new ApubiClient(server.url)
    writeFileSync(join(server.fileRoot, 'fast.bin'), Buffer.alloc(FAST_BYTES, 7))
    await privateFile(server.fileRoot, 'slow.bin', 4 << 20)
    slow = await startSlowOrigin(server.fileRoot, ORIGIN_PASSWORD, 64 * 1024)
    proxyHost = `http://127.0.0.1:${slow.proxy.port}`
  })
  after(async () => {
    await server.stop()
    await slow.close()
  })

  const scrape = async (): Promise<Sample[]> => {
    const answer = await call(server, '/metrics')
    assert.equal(answer.status, 200)
    assert.match(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/)
    return parseMetrics(answer.text)
  }

  it('answers /healthz and /readyz', async () => {
    const health = await call(server, '/healthz')
    assert.equal(health.status, 200)
    assert.deepEqual(health.json, { status: 'ok' })
    const ready = await call(server, '/readyz')
    assert.equal(ready.status, 200)
    assert.deepEqual(ready.json, { status: 'ready', checks: { database: true, workers: true } })
  })

  it('counts SOAP requests, tasks, bytes, files and retries of finished work', async () => {
    const fromFile = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'fast.bin')).href, 'metrics/fast.bin')
    assert.equal((await client.waitFor(fromFile, 20)).status, 'SUCCESS')
    // The origin answers 500 once: the task is retried, then succeeds.
    const retried = await client.loadAsset(`http://127.0.0.1:${slow.origin.port}/fail-once/fast.bin`, 'metrics/retried.bin')
    assert.equal((await client.waitFor(retried, 20)).status, 'SUCCESS')
    await assert.rejects(client.getTaskStatus('no-such-task'), (e) => e instanceof ApubiFault)

    const samples = await scrape()
    const soap = (operation: string, outcome: string) => sampleValue(samples, 'apubi_soap_request_duration_seconds_count', { operation, outcome })
    assert.equal(soap('LoadAsset', 'ok'), 2)
    assert.equal(soap('GetTaskStatus', 'ERR_TASK_NOT_FOUND'), 1)
    assert.ok((soap('GetTaskStatus', 'ok') ?? 0) >= 2)
    assert.equal(sampleValue(samples, 'apubi_soap_request_duration_seconds_bucket', { operation: 'LoadAsset', outcome: 'ok', le: '+Inf' }), 2)
    assert.equal(sampleValue(samples, 'apubi_tasks', { kind: 'load', state: 'succeeded' }), 2)
    assert.equal(sampleValue(samples, 'apubi_tasks', { kind: 'purge', state: 'succeeded' }), 0)
    assert.equal(sampleValue(samples, 'apubi_task_duration_seconds_count', { kind: 'load', outcome: 'succeeded' }), 2)
    assert.equal(sampleValue(samples, 'apubi_task_retries_total', { kind: 'load', code: 'ERR_TRANSFER' }), 1)
    assert.equal(sampleValue(samples, 'apubi_transferred_bytes_total', { source: 'file', destination: 'file' }), FAST_BYTES)
    assert.equal(sampleValue(samples, 'apubi_transferred_bytes_total', { source: 'http', destination: 'file' }), FAST_BYTES)
    assert.equal(sampleValue(samples, 'apubi_transferred_files_total', { source: 'http', destination: 'file' }), 1)
    assert.equal(sampleValue(samples, 'apubi_queue_depth'), 0)
    assert.equal(sampleValue(samples, 'apubi_queue_oldest_age_seconds'), 0)
    assert.ok((sampleValue(samples, 'apubi_process_resident_memory_bytes') ?? 0) > 0, 'process metrics too')
  })

  it('shows the running task, the queue, the rate and the open connections while a publish runs', async () => {
    const running = await client.loadAsset(slow.url('slow.bin'), 'metrics/slow.bin')
    const queued = await client.loadAsset(slow.url('slow.bin'), 'metrics/slow-2.bin')
    await taskWhen(server, running, (t) => t.state === 'running' && t.progress.bytesDone > 0)

    const during = await eventually(async () => {
      const samples = await scrape()
      const moving = (sampleValue(samples, 'apubi_transfer_rate_bytes_per_second') ?? 0) > 0 && (sampleValue(samples, 'apubi_queue_oldest_age_seconds') ?? 0) > 0
      return moving ? samples : undefined
    })
    assert.equal(sampleValue(during, 'apubi_tasks', { kind: 'load', state: 'running' }), 1)
    assert.equal(sampleValue(during, 'apubi_tasks', { kind: 'load', state: 'queued' }), 1)
    assert.equal(sampleValue(during, 'apubi_queue_depth'), 1)
    assert.ok((sampleValue(during, 'apubi_host_connections', { host: proxyHost }) ?? 0) >= 1)
    assert.equal(sampleValue(during, 'apubi_host_connections_waiting', { host: proxyHost }), 0)

    for (const id of [queued, running]) assert.equal((await call(server, `/admin/api/tasks/${id}/cancel`, { method: 'POST' })).status, 200)
    const afterwards = await scrape()
    assert.equal(sampleValue(afterwards, 'apubi_tasks', { kind: 'load', state: 'running' }), 0)
    assert.equal(sampleValue(afterwards, 'apubi_tasks', { kind: 'load', state: 'cancelled' }), 2, 'cancels are counted apart from failures')
    assert.equal(sampleValue(afterwards, 'apubi_tasks', { kind: 'load', state: 'failed' }), 0)
    assert.equal(sampleValue(afterwards, 'apubi_queue_depth'), 0)
    // The worker ended the running one; the queued one never reached a worker.
    assert.equal(sampleValue(afterwards, 'apubi_task_duration_seconds_count', { kind: 'load', outcome: 'cancelled' }), 1)
    assert.equal(sampleValue(afterwards, 'apubi_task_failures_total', { kind: 'load', code: 'ERR_CANCELLED' }), 1)
    assert.equal(sampleValue(afterwards, 'apubi_task_running_longest_seconds'), 0)
    assert.equal(sampleValue(afterwards, 'apubi_ready', { check: 'database' }), 1)
    assert.equal(sampleValue(afterwards, 'apubi_host_connections', { host: proxyHost }), undefined, 'a host no longer in use leaves')
    assert.equal(sampleValue(afterwards, 'apubi_transfer_rate_bytes_per_second'), 0)
  })

  it('logs one JSON line per SOAP request with operation, TaskId and outcome, and task lines with their TaskId', async () => {
    const lines = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    // What an aggregator groups by: the service, its version, and which instance wrote the line.
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    for (const line of lines) {
      assert.deepEqual([line['service'], line['version']], ['apubi-server', version])
      assert.match(String(line['instance']), /^.+:\d+$/)
      assert.equal(typeof line['level'], 'string', 'the level as text: alert on level="error"')
    }
    const soap = lines.filter((l) => l['msg'] === 'soap request')
    const loads = soap.filter((l) => l['operation'] === 'LoadAsset')
    assert.equal(loads.length, 4)
    for (const line of loads) assert.match(String(line['taskId']), /^[0-9a-f-]{36}$/)
    assert.ok(soap.some((l) => l['operation'] === 'GetTaskStatus' && l['taskId'] === 'no-such-task' && l['outcome'] === 'ERR_TASK_NOT_FOUND'))
    for (const line of soap) assert.ok(line['outcome'] === 'ok' || /^ERR_/.test(String(line['outcome'])), JSON.stringify(line))
    const [first] = loads
    const taskLines = lines.filter((l) => l['taskId'] === first!['taskId'] && l['msg'] !== 'soap request').map((l) => l['msg'])
    assert.deepEqual(taskLines, ['task started', 'task succeeded'])
  })

  it('keeps labels few: hosts, schemes, states, operations and codes, never a path or a secret', async () => {
    const samples = (await scrape()).filter((s) => s.name.startsWith('apubi_') && !s.name.startsWith('apubi_process_') && !s.name.startsWith('apubi_nodejs_'))
    const allowed: Record<string, RegExp> = {
      operation: /^(LoadAsset|PurgeAsset|GetTaskStatus|unknown)$/,
      outcome: /^(ok|ERR_[A-Z_]+|succeeded|failed|cancelled)$/,
      code: /^ERR_[A-Z_]+$/,
      kind: /^(load|purge)$/,
      state: /^(queued|running|retry_wait|succeeded|failed|cancelled)$/,
      check: /^(database|workers)$/,
      version: /^\d+\.\d+\.\d+/,
      process: /^[^:]+:\d+$/,
      source: /^(file|ftp|ftps|ftpes|sftp|http|https|s3|other)$/,
      destination: /^(file|ftp|ftps|ftpes|sftp|http|https|s3|other)$/,
      host: /^[a-z0-9]+:\/\/[^/@]+$/,
      le: /^[0-9.e+-]+$|^\+Inf$/,
    }
    for (const sample of samples) {
      for (const [label, value] of Object.entries(sample.labels)) {
        assert.ok(allowed[label]?.test(value), `${sample.name} ${label}="${value}"`)
      }
    }
    assert.equal((await call(server, '/metrics')).text.includes(ORIGIN_PASSWORD), false)
  })
})

describe('probe edge', () => {
  let http: Server
  let port: number
  let checks: Record<string, boolean>

  before(async () => {
    const metrics = createMetrics({ overview: async () => ({ byKindAndState: [], bytesPerSecond: 0 }), hosts: () => [], now: Date.now })
    const edge = createProbeEdge({
      metrics,
      readiness: async () => checks,
      allowMetrics: (_req, res) => {
        res.writeHead(401).end()
        return false
      },
      logger: createLogger('silent'),
    })
    http = createServer((req, res) => {
      edge(req, res).then((handled) => handled || res.writeHead(404).end())
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    port = (http.address() as AddressInfo).port
  })
  after(() => new Promise<void>((resolve) => http.close(() => resolve())))

  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: res.status, body: await res.text() }
  }

  it('answers /readyz 503 naming the failing check, 200 once all pass', async () => {
    checks = { database: false, workers: true }
    assert.deepEqual(await get('/readyz'), { status: 503, body: JSON.stringify({ status: 'not ready', checks }) })
    checks = { database: true, workers: false }
    assert.equal((await get('/readyz')).status, 503)
    checks = { database: true, workers: true }
    assert.equal((await get('/readyz')).status, 200)
  })

  it('leaves /metrics to its guard, and other paths to the next handler', async () => {
    assert.deepEqual(await get('/metrics'), { status: 401, body: '' })
    assert.equal((await get('/healthz')).status, 200)
    assert.equal((await get('/metricsx')).status, 404)
  })
})
