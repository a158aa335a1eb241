import { posix } from 'node:path'
import type { Backend } from '../backends/index.js'
import { isPublishError } from '../errors.js'
import { forEachLimited, walk, withBackend, type Job, type TransferOptions } from './job.js'
import type { Location } from './locate.js'
import { DEFAULT_MANIFEST_EXTENSIONS, planPackage } from './package-plan.js'
import { readAll } from './package-verify.js'

/**
 * Removes a file, or a directory and everything under it. Something already absent is not an error.
 * A directory holding HLS or DASH manifests loses them first, in the reverse of the publishing order
 * (the multivariant playlist, then the media playlists and MPDs, each tier whole before the next),
 * then the rest: stopped at any point, no manifest left points at a file already removed.
 */
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
    const { files, dirs } = await walk(backend, target.path, job.signal)
    const plan = await planPackage(files, options.manifestExtensions ?? DEFAULT_MANIFEST_EXTENSIONS, (file) => readAll(backend, posix.join(target.path, file.rel), job.signal), job.signal)
    const [rest = [], ...manifestTiers] = plan.tiers
    const manifests = manifestTiers.reverse()
    let filesDone = 0
    const report = () => job.onProgress({ bytesDone: 0, bytesTotal: 0, filesDone, filesTotal: files.length })
    const removeEach = (tier: ReadonlyArray<{ rel: string }>) =>
      forEachLimited(tier, options.parallelFiles, job.signal, async (file) => {
        await removeIfPresent(backend, posix.join(target.path, file.rel), job.signal)
        filesDone++
        report()
      })
    report()
    for (const tier of manifests) await removeEach(tier)
    // Object storage deletes a whole prefix in batches; removing each file would cost a request per file.
    if (backend.removeTree) return backend.removeTree(target.path, job.signal)
    await removeEach(rest)
    // Deepest first, so each directory is empty when its turn comes.
    for (const dir of dirs.reverse()) await backend.remove(posix.join(target.path, dir), job.signal)
    await backend.remove(target.path, job.signal)
  })
}

/** Removes a file; one already gone (an interrupted purge, resumed) is no error. */
async function removeIfPresent(backend: Backend, path: string, signal: AbortSignal): Promise<void> {
  try {
    await backend.remove(path, signal)
  } catch (e) {
    if (!isPublishError(e, 'ERR_NOT_FOUND')) throw e
  }
}
