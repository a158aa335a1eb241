import { originsOf, parseLocation, publish, publishMirrored, purge, purgeMirrored, type Bandwidth, type LocationPolicy, type Mirror, type TransferOptions } from '../transfer/index.js'
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
  const shared: TransferOptions = { ...transfer, backends: { ...transfer.backends, guard: policy.guard } }
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
    const { directory, name } = await (mirrored ? publishMirrored(source, origins, job, options) : publish(source, target, job, options))
    // A file published into a directory lives under its own name there: say so to the WFM.
    if (directory || !target.isDirectory) return task.destination
    return task.destination + (absoluteUrl.test(task.destination) ? encodeURIComponent(name) : name)
  }
}
