import { redact } from '../observability/index.js'
import { publicStatus, type Delivery, type ListedTask, type TaskDetail, type TaskOverview } from '../tasks/index.js'

// What the admin API answers: plain JSON, times as ISO 8601, and every text that may hold a URL
// passed through `redact` here, whatever the store already did, so that no credential leaves.

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

/** A task as the listing shows it; progress from the running worker when it runs here (fresher). */
export function taskView(task: ListedTask) {
  const progress = task.live ?? task
  return {
    id: task.id,
    kind: task.kind,
    state: task.state,
    status: publicStatus(task.state),
    source: task.shown.source === undefined ? undefined : redact(task.shown.source),
    destination: redact(task.shown.destination),
    target: redact(task.shown.target),
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    progress: { bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal, filesDone: progress.filesDone, filesTotal: progress.filesTotal },
    bytesPerSecond: task.live?.bytesPerSecond,
    etaSeconds: task.live?.etaSeconds,
    step: task.live?.step,
    lastError: task.lastError && { code: task.lastError.code, message: redact(task.lastError.message) },
    createdAt: iso(task.createdAt),
    startedAt: iso(task.startedAt),
    updatedAt: iso(task.updatedAt),
    finishedAt: iso(task.finishedAt),
    nextAttemptAt: task.state === 'retry_wait' || task.state === 'queued' ? iso(task.runAt) : undefined,
  }
}

/** Everything about one task: the listing's fields, then its history, files, metadata and timings. */
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

export function taskDetailView({ task, errors, files, invalidations, deliveries, live }: TaskDetail, now: number) {
  const shown = { source: task.source, destination: task.destination, target: task.target }
  return {
    ...taskView({ ...task, shown, ...(live && task.state === 'running' && { live }) }),
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
    invalidations: invalidations.map((i) => ({ attempt: i.attempt, at: iso(i.at), provider: i.provider, request: redact(i.request), subject: redact(i.subject), status: i.status, answer: redact(i.answer), ok: i.ok })),
    notifications: deliveries.map((d) => ({ id: d.id, event: d.event, receiver: d.receiver, state: d.state, attempts: d.attempts, lastStatus: d.lastStatus })),
    timings: {
      waitedSeconds: ((task.startedAt ?? task.finishedAt ?? now) - task.createdAt) / 1000,
      elapsedSeconds: ((task.finishedAt ?? now) - task.createdAt) / 1000,
    },
  }
}

/** The dashboard's totals. */
export function overviewView(overview: TaskOverview, now: number) {
  return {
    byState: overview.byState,
    queued: overview.byState.queued + overview.byState.retry_wait,
    running: overview.byState.running,
    failedLastHour: overview.failedLastHour,
    bytesPerSecond: overview.bytesPerSecond,
    oldestQueuedSeconds: overview.oldestDueAt === undefined ? 0 : Math.max(0, now - overview.oldestDueAt) / 1000,
  }
}
