import { checkPackageRequest, originsOf, parseLocation, publish, publishMirrored, purge, purgeMirrored, type Bandwidth, type Location, type LocationPolicy, type Mirror, type TransferOptions } from '../transfer/index.js'
import type { TaskRunner } from './worker.js'

const absoluteUrl = /^[a-z][a-z0-9+.-]*:/i

/**
 * Turns a task into transfer work. The location policy is checked again here, at the time of the
 * work, because a symlink can change between the request and the copy (and the rules with a
 * restart). Host names are not resolved here: every backend gets the policy's `guard`, so each
 * connection resolves its host through the policy and connects to the address it checked, and each
 * file path is checked again as it is opened. A refusal fails the task with ERR_POLICY_DENIED, not retried.
 */
export interface RunnerExtras {
  /** Caps on the bytes per second tasks write. */
  readonly bandwidth?: Bandwidth
  /** Destination bases published to several origins. */
  readonly mirrors?: readonly Mirror[]
}

export function createTaskRunner(policy: LocationPolicy, transfer: TransferOptions, { bandwidth, mirrors = [] }: RunnerExtras = {}): TaskRunner {
  const shared = guarded(policy, transfer)
  return async (task, signal, onProgress, files) => {
    const options: TransferOptions = bandwidth ? { ...shared, bandwidth: bandwidth.forTask(task.id) } : shared
    const job = {
      taskId: task.id,
      signal,
      onProgress,
      lastAttempt: task.attempts >= task.maxAttempts,
      completed: files.completed,
      onFile: files.record,
    }
    const target = parseLocation(task.target)
    policy.check(target)
    // A mirrored base: every origin is judged by the policy, as the target would be.
    const origins = originsOf(task.target, mirrors).map(({ url, base }) => ({ location: parseLocation(url), base }))
    for (const { location } of origins) policy.check(location)
    const mirrored = origins.length > 1
    if (task.kind === 'purge') {
      await (mirrored ? purgeMirrored(origins, job, options) : purge(target, job, options))
      return task.destination
    }
    const source = parseLocation(task.source ?? '')
    policy.check(source)
    const { directory, name, package: verified } = await (mirrored ? publishMirrored(source, origins, job, options) : publish(source, target, job, options))
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
