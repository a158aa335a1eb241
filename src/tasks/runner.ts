import { asPublishError, type PublishError } from '../errors.js'
import type { InvalidationCall, Invalidator, TargetInvalidation } from '../invalidate/index.js'
import { inventory, parseLocation, publish, purge, type LocationPolicy, type TransferOptions } from '../transfer/index.js'
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
export function createTaskRunner(policy: LocationPolicy, transfer: TransferOptions, invalidator?: Invalidator): TaskRunner {
  const options: TransferOptions = { ...transfer, backends: { ...transfer.backends, guard: policy.guard } }
  return async (task, signal, onProgress, files) => {
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
    const invalidation = invalidator?.forTarget(task.target)
    // Each attempt has its own reference: a CDN that deduplicates by it takes a retry as new.
    const reference = `${task.id}-${task.attempts}`
    if (task.kind === 'purge') {
      const before = invalidation && (await inventory(target, !invalidation.byPrefix, job, options))
      await purge(target, job, options)
      if (invalidation && before && before.type !== 'absent') {
        const held = before.type === 'directory' ? before.files : []
        await invalidate(invalidation, files, lastAttempt, (record) => invalidation.afterPurge(before.type === 'directory', held, reference, record, signal))
      }
      return task.destination
    }
    const source = parseLocation(task.source ?? '')
    policy.check(source)
    const before = invalidation && (await inventory(target, false, job, options))
    const { directory, name } = await publish(source, target, job, options)
    if (invalidation && before && before.type !== 'absent') {
      await invalidate(invalidation, files, lastAttempt, (record) => invalidation.afterLoad([...published].sort(), target.isDirectory, reference, record, signal))
    }
    // A file published into a directory lives under its own name there: say so to the WFM.
    if (directory || !target.isDirectory) return task.destination
    return task.destination + (absoluteUrl.test(task.destination) ? encodeURIComponent(name) : name)
  }
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
