// The Grafana dashboard and Prometheus alert rules shipped in docs/ work with what the server exports:
// promtool accepts the rules, and every dashboard query as a rule too (PromQL syntax); every metric a
// query or rule reads is one the server's registry renders once each of its feeds has been used; every
// label a query selects or groups by is one of that metric's labels.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createMetrics } from '../../src/metrics/index.js'
import { parseMetrics, type Sample } from './helpers.js'

const docs = new URL('../../docs/', import.meta.url)
const ALERTS = new URL('prometheus-alerts.yml', docs).pathname
const dashboard = JSON.parse(readFileSync(new URL('grafana-dashboard.json', docs), 'utf8'))

const PROMTOOL = spawnSync('promtool', ['--version']).status === 0
if (!PROMTOOL) console.warn('\n*** SKIPPED part: promtool is not installed (apt-get install prometheus, as .ci/run does) ***\n')

const dashboardQueries: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map((t) => t.expr))
const alertQueries = [...readFileSync(ALERTS, 'utf8').matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!)

/** What the registry renders once every feed has been used: task ends, retries, files, SOAP, hosts, TLS. */
async function exported(): Promise<Sample[]> {
  const metrics = createMetrics({
    overview: async () => ({ byKindAndState: [{ kind: 'load', state: 'running', count: 1 }], oldestDueAt: 0, oldestRunningStartedAt: 0, bytesPerSecond: 5 }),
    hosts: () => [{ host: 'ftp://cdn.example:21', connections: 2, waiting: 1 }],
    now: Date.now,
    readiness: async () => ({ database: true, workers: true }),
    certificateExpiresAt: () => Date.now() + 86_400_000,
    instance: { version: '1.0.0', instance: 'host:1' },
  })
  const task = { kind: 'load', createdAt: Date.now() - 1_000, source: 'file:///in/a.ts', target: 'ftp://cdn.example/a.ts' }
  metrics.tasks.taskEnded(task, 'succeeded', Date.now())
  metrics.tasks.taskEnded(task, 'failed', Date.now(), 'ERR_NOT_FOUND')
  metrics.tasks.taskRetrying(task, 'ERR_TRANSFER')
  metrics.tasks.filePublished(task, { size: 10, resumedFrom: 0 })
  metrics.soapRequest('LoadAsset', 'ok', 0.002)
  return parseMetrics(await metrics.render())
}

/** The apubi_* metric names of a query, each with the labels its selector names. */
function selectors(query: string): Array<{ metric: string; labels: string[] }> {
  return [...query.matchAll(/\b(apubi_[a-z0-9_]+)(?:\{([^}]*)\})?/g)].map((m) => ({ metric: m[1]!, labels: [...(m[2] ?? '').matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) }))
}

/** The labels a query groups by. */
const groupedBy = (query: string) => [...query.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()))

describe('Grafana dashboard and Prometheus alerts (docs/)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'apubi-monitoring-'))
  after(() => rmSync(scratch, { recursive: true, force: true }))

  it('covers what on-call asks for', () => {
    const titles = dashboard.panels.map((p: { title: string }) => p.title).join('\n')
    for (const topic of [/Publish rate/, /Bytes published per second/, /durations by outcome/, /Failures by error code/, /Queue depth/, /Connections per storage host/, /SOAP requests/, /SOAP latency/]) {
      assert.match(titles, topic)
    }
    const alerts = readFileSync(ALERTS, 'utf8')
    for (const alert of ['ApubiTasksFailing', 'ApubiQueueGrowing', 'ApubiTaskRunningLong', 'ApubiDatabaseNotReady', 'ApubiTlsCertificateExpiring']) assert.match(alerts, new RegExp(`alert: ${alert}$`, 'm'))
    assert.equal(dashboard.__inputs[0].pluginId, 'prometheus', 'asks for its data source on import')
  })

  it('reads only metrics the server exports, with their labels', async () => {
    const samples = await exported()
    const labelsOf = new Map<string, Set<string>>()
    for (const s of samples) {
      const known = labelsOf.get(s.name) ?? new Set<string>()
      for (const label of Object.keys(s.labels)) known.add(label)
      labelsOf.set(s.name, known)
    }
    const queries = [...dashboardQueries, ...alertQueries]
    assert.ok(queries.length > 20)
    for (const query of queries) {
      const found = selectors(query)
      assert.ok(found.length > 0, `${query} reads an apubi metric`)
      for (const { metric, labels } of found) {
        assert.ok(labelsOf.has(metric), `${metric} (in ${query}) is exported`)
        for (const label of labels) assert.ok(labelsOf.get(metric)!.has(label), `${metric} has the label ${label} (in ${query})`)
      }
      for (const label of groupedBy(query)) {
        assert.ok(label === 'le' || found.some(({ metric }) => labelsOf.get(metric)!.has(label)), `${query} groups by ${label}, a label of its metrics`)
      }
    }
  })

  it('passes promtool check rules, the alerts and every dashboard query', { skip: PROMTOOL ? false : 'no promtool' }, () => {
    const alerts = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' })
    assert.equal(alerts.status, 0, alerts.stdout + alerts.stderr)
    // The dashboard's queries as recording rules: promtool then parses each one.
    const rules = dashboardQueries.map((expr, i) => `      - record: apubi:dashboard_query_${i}\n        expr: ${JSON.stringify(expr)}`).join('\n')
    const file = join(scratch, 'dashboard-queries.yml')
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`)
    const queries = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' })
    assert.equal(queries.status, 0, queries.stdout + queries.stderr)
    assert.match(queries.stdout, new RegExp(`SUCCESS: ${dashboardQueries.length} rules found`))
  })
})
