import { isPublishError } from '../errors.js'
import { walk, withBackend, type Job, type TransferOptions } from './job.js'
import type { Location } from './locate.js'

/** What is at a location now: nothing, a file, or a directory with its files (when asked to list them). */
export type Inventory = { readonly type: 'absent' } | { readonly type: 'file' } | { readonly type: 'directory'; readonly files: readonly string[] }

/**
 * Looks at `location` before a task changes it, for invalidation: whether a load replaces something,
 * and what a purge removes. Lists a directory's files (paths relative to it) only when `list`.
 */
export async function inventory(location: Location, list: boolean, job: Pick<Job, 'signal'>, options: TransferOptions): Promise<Inventory> {
  return withBackend(location.endpoint, options, async (backend) => {
    let entry
    try {
      entry = await backend.stat(location.path, job.signal)
    } catch (e) {
      if (isPublishError(e, 'ERR_NOT_FOUND')) return { type: 'absent' } as const
      throw e
    }
    if (entry.type === 'file') return { type: 'file' } as const
    return { type: 'directory', files: list ? (await walk(backend, location.path, job.signal)).files.map((f) => f.rel) : [] } as const
  })
}
