import { asPublishError, type PublishError } from '../errors.js'
import type { InvalidationCall, Invalidator, TargetInvalidation } from '../invalidate/index.js'
import { checkPackageRequest, inventory, originRecord, originsOf, parseLocation, publish, publishMirrored, purge, purgeMirrored, type Bandwidth, type Location, type LocationPolicy, type Mirror, type TransferOptions } from '../transfer/index.js'
import type { FileLog, TaskRunner } from './worker.js'

const absoluteUrl = /^[a-z][a-z0-9+.-]*:/i

/**
 * Turns a task into transfer work. The location policy is checked again here, at the time of the
 * work, because a symlink can change between the request and the copy (and the rules with a
 * restart). Host names are not resolved here: every backend gets the policy's `guard`, so each
 * connection resolves its host through the policy and connects to the address it checked, and each
 * file path is checked again as it is opened. A refusal fails the task with ERR_POLICY_DENIED, not retried.
 *
 * Where the target lies under a destination base with invalidation, the work ends by telling its
 * cache or CDN: after a load into a target that existed (something was replaced), its manifests or
 * files; after a purge of something that existed, all of it (see invalidate/).
 */
export interface RunnerExtras {
  /** Caps on the bytes per second tasks write. */
  readonly bandwidth?: Bandwidth
  /** Destination bases published to several origins. */
  readonly mirrors?: readonly Mirror[]
  /** The caches and CDNs to tell after the work, by destination base. */
  readonly invalidator?: Invalidator
}

export function createTaskRunner(policy: LocationPolicy, transfer: TransferOptions, { bandwidth, mirrors = [], invalidator }: RunnerExtras = {}): TaskRunner {
  const shared = guarded(policy, transfer)
  return async (task, signal, onProgress, files) => {
    const options: TransferOptions = bandwidth ? { ...shared, bandwidth: bandwidth.forTask(task.id) } : shared
    const published = new Set(files.completed.keys())
    const lastAttempt = task.attempts >= task.maxAttempts
    const job = {
      taskId: task.id,
      signal,
      onProgress,
      lastAttempt,
      completed: files.completed,
      onFile: (file: Parameters<FileLog['record']>[0]) => {
        published.add(file.rel)
        files.record(file)
      },
    }
    const target = parseLocation(task.target)
    policy.check(target)
    // A mirrored base: every origin is judged by the policy, as the target would be.
    const origins = originsOf(task.target, mirrors).map(({ url, base }) => ({ location: parseLocation(url), base }))
    for (const { location } of origins) policy.check(location)
    const mirrored = origins.length > 1
    const invalidation = invalidator?.forTarget(task.target)
    // Each attempt has its own reference: a CDN that deduplicates by it takes a retry as new.
    const reference = `${task.id}-${task.attempts}`
    if (task.kind === 'purge') {
      const before = invalidation && (await inventory(target, !invalidation.byPrefix, job, options))
      await (mirrored ? purgeMirrored(origins, job, options) : purge(target, job, options))
      if (invalidation && before && before.type !== 'absent') {
        const held = before.type === 'directory' ? before.files : []
        await invalidate(invalidation, files, lastAttempt, (record) => invalidation.afterPurge(before.type === 'directory', held, reference, record, signal))
      }
      return task.destination
    }
    const source = parseLocation(task.source ?? '')
    policy.check(source)
    const before = invalidation && (await inventory(target, false, job, options))
    const { directory, name, package: verified } = await (mirrored ? publishMirrored(source, origins, job, options) : publish(source, target, job, options))
    if (invalidation && before && before.type !== 'absent') {
      // A mirrored task records each origin's files apart (see originRecord); every origin holds the same ones.
      const own = mirrored ? originRecord(0, '') : ''
      const rels = [...published].filter((rel) => rel.startsWith(own)).map((rel) => rel.slice(own.length)).sort()
      await invalidate(invalidation, files, lastAttempt, (record) => invalidation.afterLoad(rels, target.isDirectory, reference, record, signal))
    }
    // A file published into a directory lives under its own name there: say so to the WFM.
    const finalDestination = directory || !target.isDirectory ? task.destination : task.destination + (absoluteUrl.test(task.destination) ? encodeURIComponent(name) : name)
    return { finalDestination, ...(verified && { package: verified }) }
  }
}

/** Every backend checks its connections and paths against the policy. */
function guarded(policy: LocationPolicy, transfer: TransferOptions): TransferOptions {
  return { ...transfer, backends: { ...transfer.backends, guard: policy.guard } }
}

/**
 * The check of a LoadAsset that can be made before it is queued (see `checkPackageRequest`): a
 * destination that cannot hold the source's streaming package, or a manifest naming files outside it.
 */
export function createLoadCheck(policy: LocationPolicy, transfer: TransferOptions): (source: Location, target: Location) => Promise<void> {
  const options = guarded(policy, transfer)
  return (source, target) => checkPackageRequest(source, target, options)
}

/**
 * Runs an invalidation, each request recorded on the task. A failure fails the attempt (a transient
 * one is retried like a transfer) unless the base only warns: then, once retries are over or for a
 * refusal no retry would change, the task goes on to succeed and the failure is reported as a warning.
 */
async function invalidate(invalidation: TargetInvalidation, files: FileLog, lastAttempt: boolean, work: (record: (call: InvalidationCall) => void) => Promise<void>): Promise<void> {
  files.step?.('invalidating')
  try {
    await work((call) => files.invalidated?.(call))
  } catch (e) {
    const error: PublishError = asPublishError(e)
    if (invalidation.onFailure === 'fail' || (error.retryable && !lastAttempt) || error.code === 'ERR_CANCELLED' || error.code === 'ERR_SHUTDOWN') throw error
    files.warned?.(error)
  }
}
