import { posix } from 'node:path'
import { PublishError, asPublishError } from '../errors.js'
import { redact } from '../observability/index.js'
import { publish, type Published } from './copy.js'
import { withBackend, type Job, type Progress, type PublishedFile, type TransferOptions } from './job.js'
import type { Location } from './locate.js'
import { DEFAULT_MANIFEST_EXTENSIONS, hasManifestExtension } from './package-plan.js'
import { purge } from './purge.js'
import { SharedReads } from './shared-reads.js'

/** A destination base whose assets live on several origins (config `mirrors`). */
export interface Mirror {
  /** Absolute URL ending in `/`: targets under it are mirrored. */
  readonly base: string
  /** Absolute URLs ending in `/`, one per origin; a target's rest below `base` is appended to each. */
  readonly origins: readonly string[]
}

/** How one origin of a mirrored task stands. */
export interface OriginProgress extends Progress {
  /** The origin's base URL, credentials redacted. */
  readonly origin: string
  readonly state: 'pending' | 'running' | 'done' | 'failed'
  readonly error?: { readonly code: string; readonly message: string }
}

/** Progress of a mirrored task: the sum over its origins, and each origin's own. */
export interface MirroredProgress extends Progress {
  readonly origins: readonly OriginProgress[]
}

/**
 * The URLs `target` is published to: under a mirror's base (the longest that matches), one per
 * origin; otherwise `target` itself. Each comes with its origin's base, to name it to operators.
 */
export function originsOf(target: string, mirrors: readonly Mirror[]): Array<{ readonly url: string; readonly base: string }> {
  const mirror = mirrors.filter((m) => target.startsWith(m.base)).sort((a, b) => b.base.length - a.base.length)[0]
  if (!mirror) return [{ url: target, base: target }]
  const rest = target.slice(mirror.base.length)
  return mirror.origins.map((origin) => ({ url: origin + rest, base: origin }))
}

/**
 * The key of an origin's records among the task's published files: `@<n>/<rel>` for its files, and
 * `@<n>` alone once every file is on it and checked — so that a retry redoes only the origins not done.
 */
export function originRecord(origin: number, rel?: string): string {
  return rel === undefined ? `@${origin + 1}` : `@${origin + 1}/${rel}`
}

/**
 * Publishes `source` to every origin at once, as `publish` does to one. Where the copies of a file can
 * meet, the source is read once and streamed to all (SharedReads); else once per origin. Resolves
 * only once every origin has every file, checked. Origins done in an earlier attempt (their record in
 * `job.completed`) are left alone. When some origin fails, the others still finish; then the task
 * fails with each failed origin named, retryable if any failure is.
 */
export async function publishMirrored(source: Location, origins: ReadonlyArray<{ readonly location: Location; readonly base: string }>, job: Job, options: TransferOptions): Promise<Published> {
  const states: OriginProgress[] = origins.map(({ base }, i) => {
    const done = job.completed?.get(originRecord(i))
    const total = { bytesDone: done?.size ?? 0, bytesTotal: done?.size ?? 0, filesDone: 0, filesTotal: 0 }
    return { origin: redact(base), state: done ? 'done' : 'pending', ...total }
  })
  const report = (): void => job.onProgress(sum(states))
  const todo = origins.map((origin, i) => ({ ...origin, index: i })).filter(({ index }) => states[index]!.state !== 'done')
  const reads = new SharedReads(todo.length)
  report()
  const results = await Promise.allSettled(
    todo.map(async ({ location, index }, participant) => {
      const own = originRecord(index, '')
      const completed = new Map<string, PublishedFile>()
      for (const [rel, file] of job.completed ?? []) if (rel.startsWith(own)) completed.set(rel.slice(own.length), file)
      const originJob: Job = {
        ...job,
        completed,
        onProgress: (progress) => {
          states[index] = { ...states[index]!, ...progress, state: 'running' }
          report()
        },
        onFile: (file) => job.onFile?.({ ...file, rel: originRecord(index, file.rel) }),
      }
      try {
        const published = await publish(source, location, originJob, { ...options, shareSource: (backend) => reads.view(backend, participant) })
        const state = states[index]!
        job.onFile?.({ rel: originRecord(index), size: state.bytesTotal, verifiedBy: 'size', resumedFrom: 0 })
        states[index] = { ...state, state: 'done' }
        return published
      } catch (e) {
        const error = asPublishError(job.signal.aborted ? job.signal.reason : e)
        states[index] = { ...states[index]!, state: 'failed', error: { code: error.code, message: redact(error.message) } }
        throw e
      } finally {
        reads.leave(participant)
        report()
      }
    }),
  )
  const done = states.filter((s) => s.state === 'done').length
  throwFailures(results, todo, job, `${done} of ${origins.length} origins done; `)
  const first = results.find((r): r is PromiseFulfilledResult<Published> => r.status === 'fulfilled')
  return first?.value ?? (await shapeOf(source, job, options))
}

/** Removes `origins`' copies of an asset, every one even when one fails; then fails naming those that did. */
export async function purgeMirrored(origins: ReadonlyArray<{ readonly location: Location; readonly base: string }>, job: Job, options: TransferOptions): Promise<void> {
  const results = await Promise.allSettled(origins.map(({ location }) => purge(location, { ...job, onProgress: () => {} }, options)))
  throwFailures(results, origins, job, '')
}

/**
 * When some origin's work failed: the task's abort reason if it was aborted, else one error naming
 * each failed origin, with the code of a transient failure if there is one (so the task is retried).
 */
function throwFailures(results: ReadonlyArray<PromiseSettledResult<unknown>>, origins: ReadonlyArray<{ readonly base: string }>, job: Job, prefix: string): void {
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ base: origins[i]!.base, error: asPublishError(r.reason) }] : []))
  if (failures.length === 0) return
  if (job.signal.aborted) throw job.signal.reason
  const worth = failures.find((f) => f.error.retryable) ?? failures[0]!
  const said = failures.map(({ base, error }) => `origin ${redact(base)}: ${error.code} ${error.message}`).join('; ')
  throw new PublishError(worth.error.code, prefix + said, { cause: worth.error })
}

/** What `publish` would answer (but the package's read-back), when every origin was done in an earlier attempt. */
async function shapeOf(source: Location, job: Job, options: TransferOptions): Promise<Published> {
  const name = posix.basename(source.path)
  // A manifest brings its package, published as a directory.
  if (source.isDirectory || hasManifestExtension(source.path, options.manifestExtensions ?? DEFAULT_MANIFEST_EXTENSIONS)) return { directory: true, name }
  const entry = await withBackend(source.endpoint, options, (from) => from.stat(source.path, job.signal)).catch(() => undefined)
  return { directory: entry?.type === 'directory', name }
}

function sum(origins: readonly OriginProgress[]): MirroredProgress {
  const total = { bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0 }
  for (const o of origins) {
    total.bytesDone += o.bytesDone
    total.bytesTotal += o.bytesTotal
    total.filesDone += o.filesDone
    total.filesTotal += o.filesTotal
  }
  return { ...total, origins }
}
