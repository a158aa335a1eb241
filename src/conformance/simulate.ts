import { escapeXml } from '../soap/index.js'
import { readAnswer, type SoapAnswer } from './answer.js'
import type { Endpoint } from './endpoint.js'

/**
 * What a simulated WFM does: `concurrency` publishes at a time, each LoadAsset followed by a
 * GetTaskStatus every `intervalMs` until the task ends (then, with `purge`, a PurgeAsset of what it
 * returned, polled the same way); or, with `taskIds`, only GetTaskStatus on those ids, round robin.
 * It stops starting work after `count` tasks (status polls with `taskIds`) or `durationMs`,
 * whichever comes first; tasks already started are still polled to their end.
 */
export interface SimulatePlan {
  readonly concurrency: number
  readonly intervalMs: number
  readonly count?: number
  readonly durationMs?: number
  /** How long one task is polled before it is given up as unfinished. */
  readonly taskTimeoutMs: number
  /** `{n}` in the destination becomes the task's number (1, 2, …), so that each task is its own. */
  readonly publish?: { readonly source: string; readonly destination: string; readonly purge: boolean }
  readonly taskIds?: readonly string[]
}

export type Operation = 'LoadAsset' | 'PurgeAsset' | 'GetTaskStatus'

export interface Percentiles {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

export interface OperationReport {
  readonly requests: number
  /** Answered 2xx with no fault. */
  readonly ok: number
  /** Answered with a SOAP Fault, whatever the HTTP status. */
  readonly faults: number
  /** Answered with an HTTP error status and no SOAP Fault. */
  readonly httpErrors: number
  /** No answer: refused, reset, timed out. */
  readonly networkErrors: number
  readonly latencyMs: Percentiles
}

export interface SimulationProgress {
  readonly elapsedSeconds: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly tasks: { readonly started: number; readonly succeeded: number; readonly failed: number }
  readonly faults: number
  readonly httpErrors: number
  readonly networkErrors: number
}

export interface SimulationReport {
  readonly mode: 'publish' | 'status'
  readonly concurrency: number
  readonly intervalMs: number
  readonly elapsedSeconds: number
  readonly requests: { readonly total: number; readonly perSecond: number }
  readonly operations: Readonly<Partial<Record<Operation, OperationReport>>>
  /** Publishes: started, ended SUCCESS / FAILED, refused at LoadAsset, lost to a status fault, still IN_PROGRESS at the timeout. */
  readonly tasks: { readonly started: number; readonly succeeded: number; readonly failed: number; readonly refused: number; readonly lost: number; readonly unfinished: number }
  readonly purges: { readonly started: number; readonly succeeded: number; readonly failed: number }
  /** From sending LoadAsset to the GetTaskStatus that answered SUCCESS, ms. */
  readonly loadToSuccessMs: Percentiles
  /** Faults by `faultcode faultstring`, HTTP errors by status, network errors by message. */
  readonly faults: Readonly<Record<string, number>>
  readonly httpErrors: Readonly<Record<string, number>>
  readonly networkErrors: Readonly<Record<string, number>>
}

// Often enough to watch a run, rarely enough to cost the simulated load nothing.
const PROGRESS_EVERY_MS = 1_000

/** Runs the simulation; `onProgress` is told about every second, and once at the end. */
export async function simulate(endpoint: Endpoint, plan: SimulatePlan, onProgress?: (p: SimulationProgress) => void): Promise<SimulationReport> {
  const stats = new Stats()
  const started = performance.now()
  const deadline = plan.durationMs === undefined ? Infinity : started + plan.durationMs
  const progress = () => onProgress?.(stats.progress((performance.now() - started) / 1000))
  const ticker = setInterval(progress, PROGRESS_EVERY_MS)
  try {
    const workers = Array.from({ length: plan.concurrency }, () => (plan.taskIds ? pollWorker(endpoint, plan, plan.taskIds, stats, deadline) : publishWorker(endpoint, plan, stats, deadline)))
    await Promise.all(workers)
  } finally {
    clearInterval(ticker)
  }
  progress()
  return stats.report(plan, (performance.now() - started) / 1000)
}

async function publishWorker(endpoint: Endpoint, plan: SimulatePlan, stats: Stats, deadline: number): Promise<void> {
  const publish = plan.publish!
  const limit = plan.count ?? (plan.durationMs === undefined ? plan.concurrency : Infinity)
  while (stats.tasks.started < limit && performance.now() < deadline) {
    const n = ++stats.tasks.started
    const destination = publish.destination.replaceAll('{n}', String(n))
    const sent = performance.now()
    const load = await stats.send(endpoint, 'LoadAsset', `<SourceAssetUrl>${escapeXml(publish.source)}</SourceAssetUrl><DestinationAsset>${escapeXml(destination)}</DestinationAsset><MetaData/>`)
    const taskId = load?.values.get('TaskId')
    if (!taskId) {
      stats.tasks.refused++
      continue
    }
    const end = await pollToEnd(endpoint, taskId, plan, stats)
    if (end.status === 'SUCCESS') {
      stats.loadToSuccess.push(performance.now() - sent)
      stats.tasks.succeeded++
    } else if (end.status === 'FAILED') stats.tasks.failed++
    else stats.tasks[end.lost ? 'lost' : 'unfinished']++
    if (publish.purge && end.status === 'SUCCESS') await purge(endpoint, end.destinationAsset || destination, plan, stats)
  }
}

async function purge(endpoint: Endpoint, destination: string, plan: SimulatePlan, stats: Stats): Promise<void> {
  stats.purges.started++
  const answer = await stats.send(endpoint, 'PurgeAsset', `<DestinationAsset>${escapeXml(destination)}</DestinationAsset>`)
  const taskId = answer?.values.get('TaskId')
  const end = taskId ? await pollToEnd(endpoint, taskId, plan, stats) : {}
  stats.purges[end.status === 'SUCCESS' ? 'succeeded' : 'failed']++
}

/** Polls at the WFM's interval. A fault ends the polling (the task is lost to the WFM); an HTTP or network error does not. */
async function pollToEnd(endpoint: Endpoint, taskId: string, plan: SimulatePlan, stats: Stats): Promise<{ status?: string; destinationAsset?: string; lost?: boolean }> {
  const giveUp = performance.now() + plan.taskTimeoutMs
  const fields = `<TaskId>${escapeXml(taskId)}</TaskId>`
  while (performance.now() < giveUp) {
    await sleep(plan.intervalMs)
    const outcome = await stats.classify(endpoint, 'GetTaskStatus', fields)
    if (outcome.kind === 'fault') return { lost: true }
    const status = outcome.answer?.values.get('Status')
    if (status === 'SUCCESS' || status === 'FAILED') return { status, destinationAsset: outcome.answer!.values.get('DestinationAsset') ?? '' }
  }
  return {}
}

async function pollWorker(endpoint: Endpoint, plan: SimulatePlan, taskIds: readonly string[], stats: Stats, deadline: number): Promise<void> {
  const limit = plan.count ?? (plan.durationMs === undefined ? taskIds.length : Infinity)
  while (stats.polls < limit && performance.now() < deadline) {
    const taskId = taskIds[stats.polls++ % taskIds.length]!
    await stats.send(endpoint, 'GetTaskStatus', `<TaskId>${escapeXml(taskId)}</TaskId>`)
    if (stats.polls < limit) await sleep(Math.min(plan.intervalMs, Math.max(0, deadline - performance.now())))
  }
}

type Outcome = { kind: 'ok'; answer: SoapAnswer } | { kind: 'fault'; answer: SoapAnswer } | { kind: 'http-error' | 'network-error'; answer?: undefined }

class Stats {
  readonly operations = new Map<Operation, { requests: number; ok: number; faults: number; httpErrors: number; networkErrors: number; latencies: number[] }>()
  readonly tasks = { started: 0, succeeded: 0, failed: 0, refused: 0, lost: 0, unfinished: 0 }
  readonly purges = { started: 0, succeeded: 0, failed: 0 }
  readonly loadToSuccess: number[] = []
  readonly faults = new Map<string, number>()
  readonly httpErrors = new Map<string, number>()
  readonly networkErrors = new Map<string, number>()
  /** GetTaskStatus requests started, in the status-only mode. */
  polls = 0
  requests = 0

  /** Sends one operation, counts it; the answer when it was a success. */
  async send(endpoint: Endpoint, operation: Operation, fields: string): Promise<SoapAnswer | undefined> {
    const outcome = await this.classify(endpoint, operation, fields)
    return outcome.kind === 'ok' ? outcome.answer : undefined
  }

  async classify(endpoint: Endpoint, operation: Operation, fields: string): Promise<Outcome> {
    const exchange = await endpoint.call(operation, fields)
    const op = this.operations.get(operation) ?? { requests: 0, ok: 0, faults: 0, httpErrors: 0, networkErrors: 0, latencies: [] }
    this.operations.set(operation, op)
    this.requests++
    op.requests++
    op.latencies.push(exchange.ms)
    if (exchange.error) {
      op.networkErrors++
      bump(this.networkErrors, exchange.error)
      return { kind: 'network-error' }
    }
    const answer = readAnswer(exchange.body)
    if (answer.fault) {
      op.faults++
      bump(this.faults, `${answer.fault.faultcode} ${answer.fault.faultstring}`.trim())
      return { kind: 'fault', answer }
    }
    if (exchange.status < 200 || exchange.status > 299) {
      op.httpErrors++
      bump(this.httpErrors, String(exchange.status))
      return { kind: 'http-error' }
    }
    op.ok++
    return { kind: 'ok', answer }
  }

  progress(elapsedSeconds: number): SimulationProgress {
    const sum = (key: 'faults' | 'httpErrors' | 'networkErrors') => [...this.operations.values()].reduce((n, op) => n + op[key], 0)
    const { started, succeeded, failed } = this.tasks
    return {
      elapsedSeconds: round(elapsedSeconds),
      requests: this.requests,
      requestsPerSecond: elapsedSeconds > 0 ? round(this.requests / elapsedSeconds) : 0,
      tasks: { started, succeeded, failed },
      faults: sum('faults'),
      httpErrors: sum('httpErrors'),
      networkErrors: sum('networkErrors'),
    }
  }

  report(plan: SimulatePlan, elapsedSeconds: number): SimulationReport {
    const operations: Partial<Record<Operation, OperationReport>> = {}
    for (const [name, { latencies, ...counts }] of this.operations) operations[name] = { ...counts, latencyMs: percentiles(latencies) }
    return {
      mode: plan.taskIds ? 'status' : 'publish',
      concurrency: plan.concurrency,
      intervalMs: plan.intervalMs,
      elapsedSeconds: round(elapsedSeconds),
      requests: { total: this.requests, perSecond: elapsedSeconds > 0 ? round(this.requests / elapsedSeconds) : 0 },
      operations,
      tasks: { ...this.tasks },
      purges: { ...this.purges },
      loadToSuccessMs: percentiles(this.loadToSuccess),
      faults: Object.fromEntries(this.faults),
      httpErrors: Object.fromEntries(this.httpErrors),
      networkErrors: Object.fromEntries(this.networkErrors),
    }
  }
}

/** Nearest-rank percentiles, ms to a tenth; all 0 for no sample. */
export function percentiles(samples: readonly number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number) => (sorted.length === 0 ? 0 : round(sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!))
  return { count: sorted.length, p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: at(100) }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
