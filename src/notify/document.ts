import { redact } from '../observability/index.js'
import { publicStatus, type PublishedFile, type Task, type TaskError, type TaskEventKind } from '../tasks/index.js'

/** The JSON a receiver gets: what happened to which task, with its files and error. No secret in it. */
export interface NotificationDocument {
  readonly type: `task.${TaskEventKind}`
  readonly taskId: string
  readonly kind: Task['kind']
  /** As GetTaskStatus answers: SUCCESS, FAILED or IN_PROGRESS. */
  readonly state: ReturnType<typeof publicStatus>
  readonly attempt: number
  readonly maxAttempts: number
  readonly source?: string
  readonly destination: string
  readonly finalDestination?: string
  readonly files: ReadonlyArray<{ readonly path: string; readonly size: number; readonly md5?: string; readonly sha256?: string; readonly verifiedBy: string }>
  readonly error?: { readonly code: string; readonly message: string }
  readonly timings: { readonly createdAt: string; readonly startedAt?: string; readonly finishedAt?: string; readonly eventAt: string; readonly durationMs?: number }
}

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * The document of an event of `task`, from the task as it is when the event is expanded. Locations
 * are redacted (a receiver is not the WFM); for a retry, `error` is the one that will be retried.
 */
export function notificationDocument(event: { event: TaskEventKind; attempt: number; at: number }, task: Task, files: readonly PublishedFile[], errors: readonly TaskError[]): NotificationDocument {
  const ended = event.event === 'end'
  const error = event.event === 'start' ? undefined : errors.findLast((e) => e.attempt === event.attempt) ?? (ended ? task.lastError : undefined)
  const finishedAt = ended ? (task.finishedAt ?? event.at) : undefined
  return {
    type: `task.${event.event}`,
    taskId: task.id,
    kind: task.kind,
    state: ended ? publicStatus(task.state) : 'IN_PROGRESS',
    attempt: event.attempt,
    maxAttempts: task.maxAttempts,
    ...(task.source !== undefined && { source: redact(task.source) }),
    destination: redact(task.destination),
    ...(ended && task.state === 'succeeded' && task.finalDestination !== undefined && { finalDestination: redact(task.finalDestination) }),
    files: files.map((f) => ({ path: f.rel, size: f.size, ...(f.md5 && { md5: f.md5 }), ...(f.sha256 && { sha256: f.sha256 }), verifiedBy: f.verifiedBy })),
    ...(error && { error: { code: error.code, message: redact(error.message) } }),
    timings: {
      createdAt: iso(task.createdAt),
      ...(task.startedAt !== undefined && { startedAt: iso(task.startedAt) }),
      ...(finishedAt !== undefined && { finishedAt: iso(finishedAt), durationMs: finishedAt - task.createdAt }),
      eventAt: iso(event.at),
    },
  }
}
