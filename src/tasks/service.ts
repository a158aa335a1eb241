import { catalog, PublishError } from '../errors.js'
import { clip } from '../observability/index.js'
import { isRelativeDestination, parseLocation, resolveDestination, type Location, type LocationPolicy } from '../transfer/index.js'
import type { TaskStatusRow, TaskStore } from './store.js'
import { publicStatus, type MetadataPair, type PublicStatus, type Task, type TaskKind } from './types.js'

export interface LoadRequest {
  readonly sourceAssetUrl: string
  readonly destinationAsset: string
  readonly metadata?: { readonly xml: string; readonly pairs: readonly MetadataPair[] }
}

export interface PurgeRequest {
  readonly destinationAsset: string
  readonly metadata?: LoadRequest['metadata']
}

export interface TaskStatus {
  readonly status: PublicStatus
  /** Only once a task succeeded: where the asset is now. */
  readonly destinationAsset?: string
}

export interface TaskServiceOptions {
  readonly store: TaskStore
  readonly policy: LocationPolicy
  readonly cdnBase: string
  readonly maxAttempts: number
  readonly now: () => number
  /** Called after a task was created, so a worker picks it up without waiting for its next poll. */
  readonly onSubmitted: () => void
  /**
   * Digests a request into its dedupe key: the request holds URLs with their passwords, so with a
   * secret key configured this is an HMAC (Sealer.digest), and the database allows no offline guessing.
   */
  readonly digest: (request: string) => string
  /** Refuses a LoadAsset whose work can be seen to fail already (createLoadCheck); absent: none. */
  readonly checkLoad?: (source: Location, target: Location) => Promise<void>
}

function notFound(id: string): PublishError {
  return new PublishError('ERR_TASK_NOT_FOUND', `Task Id does not exist: ${clip(id)}`)
}

/**
 * A relative destination refused once taken under the CDN base: the fault names what the client sent,
 * never the server's own CDN path; that stays in the cause, for the log.
 */
function refusedUnderBase(destination: string, e: unknown): unknown {
  if (!(e instanceof PublishError)) return e
  return new PublishError(e.code, `Destination ${JSON.stringify(clip(destination))}: ${catalog[e.code].text.toLowerCase()} under the CDN base (the server log says why)`, { cause: e })
}

/** What GetTaskStatus answers of a task's status row. @throws PublishError ERR_TASK_NOT_FOUND */
function answerOf(id: string, task: TaskStatusRow | undefined): TaskStatus {
  if (!task) throw notFound(id)
  const status = publicStatus(task.state)
  return status === 'SUCCESS' ? { status, destinationAsset: task.finalDestination ?? task.destination } : { status }
}

/** What the SOAP edge may ask of the task engine. */
export class TaskService {
  constructor(private readonly options: TaskServiceOptions) {}

  /** @throws PublishError with a Client fault code when the request itself is unusable. */
  async submitLoad(request: LoadRequest): Promise<{ id: string; created: boolean }> {
    const source = parseLocation(request.sourceAssetUrl)
    // A host name is resolved now too: one that leads to a denied address is refused at once.
    await this.options.policy.checkResolved(source)
    return this.submit('load', request.destinationAsset, request.metadata, source)
  }

  /** @throws PublishError with a Client fault code when the request itself is unusable. */
  async submitPurge(request: PurgeRequest): Promise<{ id: string; created: boolean }> {
    return this.submit('purge', request.destinationAsset, request.metadata)
  }

  /** @throws PublishError ERR_TASK_NOT_FOUND */
  async status(id: string): Promise<TaskStatus> {
    return answerOf(id, await this.options.store.status(id))
  }

  /**
   * The same without waiting, where the store reads without waiting (SQLite); undefined where it
   * cannot (PostgreSQL): then ask status().
   * @throws PublishError ERR_TASK_NOT_FOUND
   */
  statusNow(id: string): TaskStatus | undefined {
    const { statusNow } = this.options.store
    return statusNow && answerOf(id, statusNow(id))
  }

  /** @throws PublishError ERR_TASK_NOT_FOUND */
  async get(id: string): Promise<Task> {
    const task = await this.options.store.get(id)
    if (!task) throw notFound(id)
    return task
  }

  private async submit(kind: TaskKind, destination: string, metadata: LoadRequest['metadata'], sourceLocation?: Location) {
    const { store, policy, cdnBase, maxAttempts, now, onSubmitted, digest, checkLoad } = this.options
    const target = resolveDestination(destination, cdnBase)
    let targetLocation: Location
    try {
      targetLocation = parseLocation(target)
      await policy.checkResolved(targetLocation)
    } catch (e) {
      throw isRelativeDestination(destination) ? refusedUnderBase(destination, e) : e
    }
    const source = sourceLocation?.url
    if (sourceLocation && checkLoad) await checkLoad(sourceLocation, targetLocation)
    const dedupeKey = digest(JSON.stringify([kind, source ?? null, target, metadata?.xml ?? null]))
    const result = await store.submit(
      {
        kind,
        ...(source !== undefined && { source }),
        destination,
        target,
        ...(metadata && { metadataXml: metadata.xml }),
        metadataPairs: metadata?.pairs ?? [],
        maxAttempts,
        dedupeKey,
      },
      now(),
    )
    if (result.created) onSubmitted()
    return result
  }
}
