import { posix } from 'node:path'
import { isPublishError } from '../errors.js'
import { forEachLimited, walk, withBackend, type Job, type TransferOptions } from './job.js'
import type { Location } from './locate.js'

/** Removes a file, or a directory and everything under it. Something already absent is not an error. */
export async function purge(target: Location, job: Job, options: TransferOptions): Promise<void> {
  await withBackend(target.endpoint, options, async (backend) => {
    let entry
    try {
      entry = await backend.stat(target.path, job.signal)
    } catch (e) {
      if (isPublishError(e, 'ERR_NOT_FOUND')) return
      throw e
    }
    if (entry.type === 'file') return backend.remove(target.path, job.signal)
    // Object storage deletes a whole prefix in batches; walking it would cost a request per file.
    if (backend.removeTree) return backend.removeTree(target.path, job.signal)
    const { files, dirs } = await walk(backend, target.path, job.signal)
    let filesDone = 0
    const report = () => job.onProgress({ bytesDone: 0, bytesTotal: 0, filesDone, filesTotal: files.length })
    report()
    await forEachLimited(files, options.parallelFiles, job.signal, async (file) => {
      await backend.remove(posix.join(target.path, file.rel), job.signal)
      filesDone++
      report()
    })
    // Deepest first, so each directory is empty when its turn comes.
    for (const dir of dirs.reverse()) await backend.remove(posix.join(target.path, dir), job.signal)
    await backend.remove(target.path, job.signal)
  })
}
