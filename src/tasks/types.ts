import type { Code } from '../errors.js'

export type TaskKind = 'load' | 'purge'

/** Internal states; the WFM sees them through `publicStatus`. */
export const TASK_STATES = Object.freeze(['queued', 'running', 'retry_wait', 'succeeded', 'failed'] as const)
export type TaskState = (typeof TASK_STATES)[number]

/**
 * States as operators see them: a FAILED task that an operator cancelled is `cancelled`, a state of
 * its own in listings, filters and counts. The WFM still reads FAILED for it (publicStatus).
 */
export const OPERATOR_STATES = Object.freeze([...TASK_STATES, 'cancelled'] as const)
export type OperatorState = (typeof OPERATOR_STATES)[number]

export function operatorState(task: { readonly state: TaskState; readonly lastError?: { readonly code: string } }): OperatorState {
  return task.state === 'failed' && task.lastError?.code === 'ERR_CANCELLED' ? 'cancelled' : task.state
}

export type PublicStatus = 'IN_PROGRESS' | 'SUCCESS' | 'FAILED'

export function publicStatus(state: TaskState): PublicStatus {
  if (state === 'succeeded') return 'SUCCESS'
  if (state === 'failed') return 'FAILED'
  return 'IN_PROGRESS'
}

export interface MetadataPair {
  readonly key: string
  readonly value: string
}

export interface TaskError {
  readonly attempt: number
  readonly at: number
  readonly code: Code
  /** Already redacted. */
  readonly message: string
}

/**
 * What the store keeps of a task. URLs are as given, credentials included: sealed at rest when a secret
 * key is configured (sealed-store.ts), redacted on display.
 */
export interface Task {
  readonly id: string
  readonly kind: TaskKind
  readonly state: TaskState
  /** LoadAsset's SourceAssetUrl, trimmed; undefined for purges. */
  readonly source?: string
  /** DestinationAsset as the WFM sent it, trimmed. */
  readonly destination: string
  /** The absolute URL the work targets: `destination` resolved against the CDN base. */
  readonly target: string
  /** What GetTaskStatus returns on SUCCESS. */
  readonly finalDestination?: string
  readonly metadataXml?: string
  readonly metadataPairs: readonly MetadataPair[]
  readonly attempts: number
  readonly maxAttempts: number
  /** Epoch ms when the task may next be claimed. */
  readonly runAt: number
  readonly leaseOwner?: string
  readonly leaseToken: number
  readonly leaseUntil?: number
  readonly bytesDone: number
  readonly bytesTotal: number
  readonly filesDone: number
  readonly filesTotal: number
  readonly lastError?: { readonly code: Code; readonly message: string }
  readonly createdAt: number
  readonly startedAt?: number
  readonly updatedAt: number
  readonly finishedAt?: number
  /** The failed task this one re-runs (made by an operator's re-run). */
  readonly rerunOf?: string
  /** For a publish that held HLS or DASH manifests: what reading them back at the destination found. */
  readonly package?: PackageSummary
}

export interface NewTask {
  readonly kind: TaskKind
  readonly source?: string
  readonly destination: string
  readonly target: string
  readonly metadataXml?: string
  readonly metadataPairs: readonly MetadataPair[]
  readonly maxAttempts: number
  /** Identical requests share it; while one is active, submitting another returns its id. */
  readonly dedupeKey: string
  /**
   * Source, destination and target as operators may see and search them, credentials redacted. A store
   * keeps them beside the values (which may be sealed); without them it keeps `redact` of the values.
   */
  readonly shown?: ShownLocations
}

/** A task's locations with their credentials redacted: safe to list, search and display. */
export interface ShownLocations {
  readonly source?: string
  readonly destination: string
  readonly target: string
}

/** A task claimed by one worker; `token` fences every later write (a newer claim gets a higher token). */
export interface Claimed {
  readonly task: Task
  readonly token: number
}

export type { PackageSummary, Progress, PublishedFile } from '../transfer/index.js'
import type { PackageSummary } from '../transfer/index.js'

export type Outcome =
  | { readonly state: 'succeeded'; readonly finalDestination: string; readonly package?: PackageSummary }
  | { readonly state: 'failed'; readonly error: Omit<TaskError, 'attempt' | 'at'> }
  | { readonly state: 'retry_wait'; readonly error: Omit<TaskError, 'attempt' | 'at'>; readonly runAt: number }

/**
 * How a listing is ordered: `active` (the default) puts running, then retrying, then queued tasks
 * first, then the rest newest first; the others order by creation, end, or duration (submission to
 * end, or to now while not ended), tasks without the key last.
 */
export const TASK_SORTS = Object.freeze(['active', 'created', 'finished', 'duration'] as const)
export type TaskSort = (typeof TASK_SORTS)[number]

/** What an operator's listing asks for: every filter optional. */
export interface TaskQuery {
  readonly states?: readonly OperatorState[]
  readonly kind?: TaskKind
  /** Created at or after, epoch ms. */
  readonly createdFrom?: number
  /** Created before, epoch ms. */
  readonly createdBefore?: number
  /** Text found, ignoring case, in the shown source, destination or target (never in a secret). */
  readonly text?: string
  readonly sort?: TaskSort
  /** `desc` unless asked: newest, latest or longest first. */
  readonly order?: 'asc' | 'desc'
  /** The time durations of unended tasks run to (epoch ms); the clock when absent. */
  readonly now?: number
  readonly limit: number
  readonly offset: number
}

/** A task as a listing shows it: its locations are the shown ones (credentials redacted). */
export interface TaskSummary
  extends Pick<
    Task,
    | 'id'
    | 'kind'
    | 'state'
    | 'attempts'
    | 'maxAttempts'
    | 'runAt'
    | 'bytesDone'
    | 'bytesTotal'
    | 'filesDone'
    | 'filesTotal'
    | 'lastError'
    | 'createdAt'
    | 'startedAt'
    | 'updatedAt'
    | 'finishedAt'
    | 'rerunOf'
  > {
  readonly shown: ShownLocations
}

/** One page of a listing and how many tasks match in all. */
export interface TaskPage {
  readonly tasks: readonly TaskSummary[]
  readonly total: number
}

/** What dashboards and metrics count, read in one go. */
export interface TaskCounts {
  /** Tasks held (retention included), by kind and state; pairs with no task are absent. */
  readonly byKindAndState: ReadonlyArray<{ readonly kind: TaskKind; readonly state: OperatorState; readonly count: number }>
  /** Tasks that ended FAILED at or after the time asked about, cancelled ones apart. */
  readonly failedSince: number
  /** Tasks cancelled by an operator since that time. */
  readonly cancelledSince: number
  /** Tasks that ended SUCCESS since the day's start asked about, and the bytes they published. */
  readonly succeededSince: number
  readonly bytesSince: number
  /** When the task running longest started (epoch ms); undefined when none runs. */
  readonly oldestRunningStartedAt?: number
  /** When the task waiting longest for a worker became due (epoch ms); undefined when none waits. */
  readonly oldestDueAt?: number
}

/** A request to a cache or CDN made after a task's work, and its answer (no secret in it). */
export interface InvalidationRecord {
  readonly provider: string
  /** Method and URL. */
  readonly request: string
  /** The URLs or paths asked for. */
  readonly subject: string
  readonly status?: number
  readonly answer: string
  readonly ok: boolean
}

/** An invalidation record as the task keeps it: with the attempt that made it and when. */
export interface RecordedInvalidation extends InvalidationRecord {
  readonly attempt: number
  readonly at: number
}
