import { posix } from 'node:path'
import type { Backend } from '../backends/index.js'
import { isPublishError, PublishError } from '../errors.js'
import { copyFile, type Landed } from './copy-file.js'
import { forEachLimited, walk, withBackend, withSource, type Job, type TransferOptions } from './job.js'
import type { Location } from './locate.js'
import { ProgressCounter } from './progress.js'

/**
 * Publishes `source` (a file, or a directory's contents) to `destination`, one `copyFile` per file
 * (see there for temporary names, checksums and resume). Existing destination files are replaced.
 * From storage without listings, an HLS or DASH manifest published into a directory brings its package.
 * @returns whether the source was a directory, and the base name of a copied file.
 */
export async function publish(source: Location, destination: Location, job: Job, options: TransferOptions): Promise<{ directory: boolean; name: string }> {
  return withSource(source.endpoint, options, (from) =>
    withBackend(destination.endpoint, options, async (to) => {
      // A storage without listings (HTTP) lists a streaming package from its manifest instead.
      if (from.listPackage && !source.isDirectory && destination.isDirectory && PACKAGE_MANIFEST.test(source.path)) {
        await publishPackage(from, await from.listPackage(source.path, job.signal), to, destination.path, job, options)
        return { directory: true, name: posix.basename(source.path) }
      }
      const root = await from.stat(source.path, job.signal)
      if (source.isDirectory && root.type !== 'directory') {
        throw new PublishError('ERR_NOT_A_DIRECTORY', `${source.path} is a file, but the source URL ends with '/'`)
      }
      const name = posix.basename(source.path)
      if (root.type === 'file') {
        const target = destination.isDirectory ? posix.join(destination.path, name) : destination.path
        const progress = new ProgressCounter(job, root.size, 1)
        const { recorded } = await copyFile({ from, sourcePath: source.path, size: root.size, to, targetPath: target, rel: name }, job, progress, options.checksums)
        await recorded
        return { directory: false, name }
      }
      const { files, dirs } = await walk(from, source.path, job.signal)
      const progress = new ProgressCounter(job, files.reduce((sum, f) => sum + f.size, 0), files.length)
      const targetIsNew = await isAbsent(to, destination.path, job.signal)
      // Empty source directories too; where directories are implicit, writing the files is enough.
      if (!to.features.implicitDirectories) {
        await to.mkdir(destination.path, job.signal)
        for (const dir of dirs) await to.mkdir(posix.join(destination.path, dir), job.signal)
      }
      await copyEach(files, options, job, ({ rel, size }) =>
        copyFile({ from, sourcePath: posix.join(source.path, rel), size, to, targetPath: posix.join(destination.path, rel), rel, targetIsNew }, job, progress, options.checksums),
      )
      return { directory: true, name }
    }),
  )
}

const PACKAGE_MANIFEST = /\.(m3u8|mpd)$/i

/** Each file holds a connection on both sides: half the host cap keeps one task from starving itself. */
function lanesFor(options: TransferOptions): number {
  return Math.max(1, Math.min(options.parallelFiles, Math.floor(options.connectionsPerHost / 2)))
}

/**
 * The files of an HLS or DASH package (as `listPackage` gives them) into `targetDir` under the same
 * relative paths. Sizes come from a stat (HEAD) of each file, taken before any copy so that progress
 * knows the total.
 */
async function publishPackage(from: Backend, files: Array<{ rel: string; path: string }>, to: Backend, targetDir: string, job: Job, options: TransferOptions): Promise<void> {
  const sizes = new Map<string, number>()
  await forEachLimited(files, lanesFor(options), job.signal, async ({ path }) => void sizes.set(path, (await from.stat(path, job.signal)).size))
  const progress = new ProgressCounter(job, [...sizes.values()].reduce((sum, size) => sum + size, 0), files.length)
  const targetIsNew = await isAbsent(to, targetDir, job.signal)
  if (!to.features.implicitDirectories) await to.mkdir(targetDir, job.signal)
  await copyEach(files, options, job, ({ rel, path }) =>
    copyFile({ from, sourcePath: path, size: sizes.get(path) ?? 0, to, targetPath: posix.join(targetDir, rel), rel, targetIsNew }, job, progress, options.checksums),
  )
}

/**
 * Copies `files` over the lanes, each lane going on to its next file once one has landed; returns
 * once every landed file is recorded too. The first failure, of a copy or of a record, starts no
 * more copies and is thrown.
 */
async function copyEach<T>(files: readonly T[], options: TransferOptions, job: Job, copy: (file: T) => Promise<Landed>): Promise<void> {
  let failure: { error: unknown } | undefined
  const records: Array<Promise<void>> = []
  try {
    await forEachLimited(files, lanesFor(options), job.signal, async (file) => {
      if (failure) throw failure.error
      const { recorded } = await copy(file)
      records.push(recorded.catch((e: unknown) => void (failure ??= { error: e })))
    })
  } catch (e) {
    failure ??= { error: e }
  }
  await Promise.all(records)
  if (failure) throw failure.error
}

/** Nothing is at `path` yet. */
async function isAbsent(backend: Backend, path: string, signal: AbortSignal): Promise<boolean> {
  try {
    await backend.stat(path, signal)
    return false
  } catch (e) {
    if (isPublishError(e, 'ERR_NOT_FOUND')) return true
    throw e
  }
}
