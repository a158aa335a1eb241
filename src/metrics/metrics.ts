import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { redact } from '../observability/index.js'
import { HotHistogram } from './hot-histogram.js'

/** What metrics read at scrape time; main.ts wires them to the task engine and the host limiter. */
export interface MetricSources {
  overview(): Promise<{
    readonly byKindAndState: ReadonlyArray<{ readonly kind: string; readonly state: string; readonly count: number }>
    readonly oldestDueAt?: number
    readonly oldestRunningStartedAt?: number
    readonly bytesPerSecond: number
  }>
  hosts(): ReadonlyArray<{ readonly host: string; readonly connections: number; readonly waiting: number }>
  /** The bandwidth caps in force (structurally a transfer/ BandwidthView); absent: none. */
  bandwidth?(): {
    readonly overall?: BandwidthCap
    readonly hosts: Readonly<Record<string, BandwidthCap>>
    readonly instanceShare: number
  }
  now(): number
  /** The checks of /readyz, each true when it passes. */
  readiness?(): Promise<Record<string, boolean>>
  /** When the served TLS certificate expires (epoch ms); undefined without TLS. */
  certificateExpiresAt?(): number | undefined
  /** Exported as apubi_build_info's labels. */
  readonly instance?: { readonly version: string; readonly instance: string }
}

interface BandwidthCap {
  readonly bytesPerSecond: number | null
  readonly instanceBytesPerSecond: number | null
}

/** The little metrics need of a task (structurally a tasks/ Task). */
export interface ObservedTask {
  readonly kind: string
  readonly createdAt: number
  readonly source?: string
  readonly target: string
}

/** The Prometheus registry of the server, and the calls that feed it. */
export interface Metrics {
  readonly registry: Registry
  /** One SOAP request answered: `outcome` is 'ok' or the fault's error code. */
  soapRequest(operation: string, outcome: string, seconds: number): void
  /** For the worker (a tasks/ WorkerObserver). */
  readonly tasks: {
    taskEnded(task: ObservedTask, state: 'succeeded' | 'failed', now: number, code?: string): void
    taskRetrying(task: ObservedTask, code: string): void
    filePublished(task: ObservedTask, file: { readonly size: number; readonly resumedFrom: number }): void
    invalidated(task: ObservedTask, call: { readonly provider: string; readonly ok: boolean }): void
    invalidationWarned(task: ObservedTask, code: string): void
  }
  /** For the notifier: one delivery attempt, by receiver name (from the config) and outcome. */
  notificationSent(receiver: string, outcome: 'delivered' | 'retry' | 'failed'): void
  /** Reads the sources, then renders every metric in the text exposition format. */
  render(): Promise<string>
  readonly contentType: string
}

// Label values come from closed sets (schemes, states, operations, catalogued codes) or from the
// hosts the server talks to, never from a URL or a path: series stay few whatever is published.
const SCHEMES: ReadonlySet<string> = new Set(['file', 'ftp', 'ftps', 'ftpes', 'sftp', 'http', 'https', 's3'])
const OPERATIONS: ReadonlySet<string> = new Set(['LoadAsset', 'PurgeAsset', 'GetTaskStatus'])
const OUTCOME = /^(ok|ERR_[A-Z_]+)$/
const KINDS = ['load', 'purge'] as const
const PROVIDERS: ReadonlySet<string> = new Set(['http', 'cloudfront', 'akamai'])
const STATES = ['queued', 'running', 'retry_wait', 'succeeded', 'failed', 'cancelled'] as const

/** `file`, `ftp`, …; `other` for anything unexpected. */
export function schemeOf(url: string | undefined): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url ?? '')?.[1]?.toLowerCase() ?? ''
  return SCHEMES.has(scheme) ? scheme : 'other'
}

/** SOAP latencies: GetTaskStatus answers in about a millisecond, a LoadAsset in a few. */
const SOAP_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
/** Tasks last from a second (a purge) to hours (a large package over a slow link). */
const TASK_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]

export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'apubi_' })
  const registers = [registry]

  const soapDuration = new HotHistogram(
    'apubi_soap_request_duration_seconds',
    'SOAP requests answered, by operation and outcome (ok, or the fault\'s error code), and how long each took; _count counts them',
    ['operation', 'outcome'],
    SOAP_BUCKETS_S,
    registry,
  )
  const taskDuration = new Histogram({
    name: 'apubi_task_duration_seconds',
    help: 'Tasks ended under this process, by kind and outcome (succeeded, failed, cancelled), from submission to end',
    labelNames: ['kind', 'outcome'],
    buckets: TASK_BUCKETS_S,
    registers,
  })
  const failures = new Counter({ name: 'apubi_task_failures_total', help: 'Tasks ended FAILED under this process, by kind and error code (ERR_CANCELLED: by an operator)', labelNames: ['kind', 'code'], registers })
  const retries = new Counter({ name: 'apubi_task_retries_total', help: 'Attempts that failed with a transient error and will be tried again, by kind and error code', labelNames: ['kind', 'code'], registers })
  const bytes = new Counter({
    name: 'apubi_transferred_bytes_total',
    help: 'Bytes of the files published, by source and destination scheme (a resumed file counts the bytes this attempt sent)',
    labelNames: ['source', 'destination'],
    registers,
  })
  const files = new Counter({ name: 'apubi_transferred_files_total', help: 'Files published, by source and destination scheme', labelNames: ['source', 'destination'], registers })
  const invalidations = new Counter({ name: 'apubi_invalidations_total', help: 'Requests to caches and CDNs after loads and purges, by provider and outcome (ok, failed); warned counts invalidations that failed on a base that only warns (the task succeeded)', labelNames: ['provider', 'outcome'], registers })
  const notifications = new Counter({ name: 'apubi_notifications_total', help: 'Attempts to deliver a task notification, by receiver (as named in the config) and outcome (delivered, retry, failed)', labelNames: ['receiver', 'outcome'], registers })
  const tasks = new Gauge({ name: 'apubi_tasks', help: 'Tasks held in the database (finished ones until retention), by kind and state', labelNames: ['kind', 'state'], registers })
  const queueDepth = new Gauge({ name: 'apubi_queue_depth', help: 'Tasks waiting for a worker: queued, or waiting to be retried', registers })
  const oldestAge = new Gauge({ name: 'apubi_queue_oldest_age_seconds', help: 'How long the task due longest ago has waited for a worker; 0 when none waits', registers })
  const rate = new Gauge({ name: 'apubi_transfer_rate_bytes_per_second', help: 'Bytes per second of every task running, together (over the last seconds)', registers })
  const connections = new Gauge({ name: 'apubi_host_connections', help: 'Connections open to each storage host (scheme://host:port)', labelNames: ['host'], registers })
  const waiting = new Gauge({ name: 'apubi_host_connections_waiting', help: 'Connections waiting for a free slot of each storage host', labelNames: ['host'], registers })
  const longestRunning = new Gauge({ name: 'apubi_task_running_longest_seconds', help: 'How long the task running longest (on any instance) has run since it first started; 0 when none runs', registers })
  const ready = new Gauge({ name: 'apubi_ready', help: 'Each readiness check of /readyz (database, workers): 1 when it passes', labelNames: ['check'], registers })
  // Registered at the first scrape with TLS: an unset gauge would read 0, an expiry long past.
  let certificateExpiry: Gauge | undefined
  const buildInfo = new Gauge({ name: 'apubi_build_info', help: 'Always 1: the version of this process and its host:pid (the process label: Prometheus keeps instance for the scrape target)', labelNames: ['version', 'process'], registers })
  if (sources.instance) buildInfo.labels(sources.instance.version, sources.instance.instance).set(1)

  const bandwidthLimit = new Gauge({
    name: 'apubi_bandwidth_limit_bytes_per_second',
    help: 'Bandwidth cap in force now, across every instance: scope overall, or host (with the origin host); absent while the timetable says off',
    labelNames: ['scope', 'host'],
    registers,
  })
  const bandwidthInstance = new Gauge({
    name: 'apubi_bandwidth_instance_limit_bytes_per_second',
    help: 'The part of each bandwidth cap this instance takes now (its share of the running tasks on a shared database)',
    labelNames: ['scope', 'host'],
    registers,
  })

  // GetTaskStatus is the hot path: the series of each operation and outcome, found without building a key.
  const soapSeries = new Map<string, Map<string, (seconds: number) => void>>()

  return {
    registry,
    contentType: registry.contentType,
    soapRequest(operation, outcome, seconds) {
      let observe = soapSeries.get(operation)?.get(outcome)
      if (!observe) {
        const op = OPERATIONS.has(operation) ? operation : 'unknown'
        const out = OUTCOME.test(outcome) ? outcome : 'other'
        const series = soapDuration.series(op, out)
        // Only values kept as they came are remembered: whatever else arrives stays a few series.
        if (op === operation && out === outcome) soapSeries.set(op, (soapSeries.get(op) ?? new Map()).set(out, series))
        observe = series
      }
      observe(seconds)
    },
    tasks: {
      taskEnded(task, state, now, code) {
        const outcome = state === 'failed' && code === 'ERR_CANCELLED' ? 'cancelled' : state
        taskDuration.labels(task.kind, outcome).observe(Math.max(0, now - task.createdAt) / 1000)
        if (state === 'failed') failures.labels(task.kind, code !== undefined && OUTCOME.test(code) ? code : 'other').inc()
      },
      taskRetrying(task, code) {
        retries.labels(task.kind, OUTCOME.test(code) ? code : 'other').inc()
      },
      filePublished(task, file) {
        const labels = [schemeOf(task.source), schemeOf(task.target)] as const
        bytes.labels(...labels).inc(Math.max(0, file.size - file.resumedFrom))
        files.labels(...labels).inc()
      },
      invalidated(_task, call) {
        invalidations.labels(PROVIDERS.has(call.provider) ? call.provider : 'other', call.ok ? 'ok' : 'failed').inc()
      },
      invalidationWarned() {
        invalidations.labels('any', 'warned').inc()
      },
    },
    notificationSent(receiver, outcome) {
      notifications.labels(receiver, outcome).inc()
    },
    async render() {
      const overview = await sources.overview()
      // Every pair present, at 0 when no task has it: an absent series reads as "no data", not none.
      for (const kind of KINDS) for (const state of STATES) tasks.labels(kind, state).set(0)
      let depth = 0
      for (const { kind, state, count } of overview.byKindAndState) {
        tasks.labels(kind, state).set(count)
        if (state === 'queued' || state === 'retry_wait') depth += count
      }
      queueDepth.set(depth)
      oldestAge.set(overview.oldestDueAt === undefined ? 0 : Math.max(0, sources.now() - overview.oldestDueAt) / 1000)
      rate.set(overview.bytesPerSecond)
      longestRunning.set(overview.oldestRunningStartedAt === undefined ? 0 : Math.max(0, sources.now() - overview.oldestRunningStartedAt) / 1000)
      if (sources.readiness) {
        const checks = await sources.readiness().catch(() => ({ readiness: false }))
        ready.reset()
        for (const [check, passes] of Object.entries(checks)) ready.labels(check).set(passes ? 1 : 0)
      }
      const expiresAt = sources.certificateExpiresAt?.()
      if (expiresAt !== undefined && Number.isFinite(expiresAt)) {
        certificateExpiry ??= new Gauge({ name: 'apubi_tls_certificate_expiry_timestamp_seconds', help: 'When the TLS certificate served now expires, Unix time; absent without TLS', registers })
        certificateExpiry.set(expiresAt / 1000)
      }
      // Hosts no longer in use leave the exposition rather than stay at their last value.
      connections.reset()
      waiting.reset()
      for (const host of sources.hosts()) {
        connections.labels(redact(host.host)).set(host.connections)
        waiting.labels(redact(host.host)).set(host.waiting)
      }
      bandwidthLimit.reset()
      bandwidthInstance.reset()
      const caps = sources.bandwidth?.()
      const listed = caps ? [...(caps.overall ? [{ scope: 'overall', host: '', cap: caps.overall }] : []), ...Object.entries(caps.hosts).map(([host, cap]) => ({ scope: 'host', host, cap }))] : []
      for (const { scope, host, cap } of listed) {
        if (cap.bytesPerSecond !== null) bandwidthLimit.labels(scope, host).set(cap.bytesPerSecond)
        if (cap.instanceBytesPerSecond !== null) bandwidthInstance.labels(scope, host).set(cap.instanceBytesPerSecond)
      }
      return registry.metrics()
    },
  }
}
