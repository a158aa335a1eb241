import { catalog } from '../errors.js'
import { redact, type Instance } from '../observability/index.js'
import { operatorState, publicStatus, type Delivery, type ListedTask, type TaskDetail, type TaskOverview } from '../tasks/index.js'

// What the admin API answers: plain JSON, times as ISO 8601, and every text that may hold a URL
// passed through `redact` here, whatever the store already did, so that no credential leaves.

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

/**
 * A task as the listing shows it; progress from the running worker when it runs here (fresher).
 * `state` is the operators' (`cancelled` apart from `failed`), `status` what GetTaskStatus answers.
 */
export function taskView(task: ListedTask, now: number) {
  const progress = task.live ?? task
  return {
    id: task.id,
    kind: task.kind,
    state: operatorState(task),
    status: publicStatus(task.state),
    source: task.shown.source === undefined ? undefined : redact(task.shown.source),
    destination: redact(task.shown.destination),
    target: redact(task.shown.target),
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    progress: { bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal, filesDone: progress.filesDone, filesTotal: progress.filesTotal },
    bytesPerSecond: task.live?.bytesPerSecond,
    etaSeconds: task.live?.etaSeconds,
    limitBytesPerSecond: task.live?.limitBytesPerSecond,
    step: task.live?.step,
    // `title`: the code in words (errors.ts), for people who do not know the codes by heart.
    lastError: task.lastError && { code: task.lastError.code, title: catalog[task.lastError.code]?.text ?? task.lastError.code, message: redact(task.lastError.message) },
    createdAt: iso(task.createdAt),
    startedAt: iso(task.startedAt),
    updatedAt: iso(task.updatedAt),
    finishedAt: iso(task.finishedAt),
    nextAttemptAt: task.state === 'retry_wait' || task.state === 'queued' ? iso(task.runAt) : undefined,
    /** From submission to end, or to now while it has not ended. */
    durationSeconds: Math.max(0, (task.finishedAt ?? now) - task.createdAt) / 1000,
    rerunOf: task.rerunOf,
  }
}

/** A notification as operators see it: the document it carries, parsed. */
export function deliveryView(d: Delivery) {
  return {
    id: d.id,
    taskId: d.taskId,
    event: d.event,
    receiver: d.receiver,
    state: d.state,
    attempts: d.attempts,
    nextAt: d.state === 'pending' ? iso(d.nextAt) : undefined,
    lastStatus: d.lastStatus,
    lastError: d.lastError === undefined ? undefined : redact(d.lastError),
    createdAt: iso(d.createdAt),
    deliveredAt: d.deliveredAt === undefined ? undefined : iso(d.deliveredAt),
    document: JSON.parse(d.document) as unknown,
  }
}

/** Everything about one task: the listing's fields, then its history, files, metadata and timings. */
export function taskDetailView({ task, errors, files, invalidations, deliveries, live, origins }: TaskDetail, now: number) {
  const shown = { source: task.source, destination: task.destination, target: task.target }
  return {
    ...taskView({ ...task, shown, ...(live && task.state === 'running' && { live }) }, now),
    finalDestination: task.finalDestination === undefined ? undefined : redact(task.finalDestination),
    metadata: task.metadataPairs.map(({ key, value }) => ({ key: redact(key), value: redact(value) })),
    attemptHistory: errors.map((e) => ({ attempt: e.attempt, at: iso(e.at), code: e.code, message: redact(e.message) })),
    files: files.map((f) => ({
      path: redact(f.rel),
      size: f.size,
      md5: f.md5,
      sha256: f.sha256,
      verifiedBy: f.verifiedBy,
      resumedFrom: f.resumedFrom,
    })),
    origins: origins?.map((o) => ({
      origin: redact(o.origin),
      state: o.state,
      progress: { bytesDone: o.bytesDone, bytesTotal: o.bytesTotal, filesDone: o.filesDone, filesTotal: o.filesTotal },
      error: o.error && { code: o.error.code, message: redact(o.error.message) },
    })),
    package: task.package,
    invalidations: invalidations.map((i) => ({ attempt: i.attempt, at: iso(i.at), provider: i.provider, request: redact(i.request), subject: redact(i.subject), status: i.status, answer: redact(i.answer), ok: i.ok })),
    notifications: deliveries.map((d) => ({ id: d.id, event: d.event, receiver: d.receiver, state: d.state, attempts: d.attempts, lastStatus: d.lastStatus })),
    timings: {
      waitedSeconds: ((task.startedAt ?? task.finishedAt ?? now) - task.createdAt) / 1000,
      elapsedSeconds: ((task.finishedAt ?? now) - task.createdAt) / 1000,
    },
  }
}

/** Whether this instance is ready (as /readyz answers), each check by name. */
export type Readiness = Record<string, boolean>

/** The dashboard's totals, and which instance answers and whether it is ready. */
export function overviewView(overview: TaskOverview, now: number, instance: Instance, readiness: Readiness) {
  return {
    byState: overview.byState,
    queued: overview.byState.queued + overview.byState.retry_wait,
    running: overview.byState.running,
    failedLastHour: overview.failedLastHour,
    cancelledLastHour: overview.cancelledLastHour,
    succeededToday: overview.succeededToday,
    bytesToday: overview.bytesToday,
    bytesPerSecond: overview.bytesPerSecond,
    oldestQueuedSeconds: overview.oldestDueAt === undefined ? 0 : Math.max(0, now - overview.oldestDueAt) / 1000,
    longestRunningSeconds: overview.oldestRunningStartedAt === undefined ? 0 : Math.max(0, now - overview.oldestRunningStartedAt) / 1000,
    instance: { host: instance.instance, version: instance.version },
    ready: Object.values(readiness).every(Boolean),
    checks: readiness,
    now: iso(now),
  }
}
