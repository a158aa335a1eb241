import { posix } from 'node:path'
import { pipeline, Transform, type TransformCallback } from 'node:stream'
import type { Backend } from '../backends/index.js'
import { PublishError } from '../errors.js'
import { forEachLimited, walk, withBackend, type Job, type TransferOptions } from './job.js'
import type { Location } from './locate.js'

/**
 * Publishes `source` (a file, or a directory's contents) to `destination`. Each file is written
 * under a temporary name, its size checked, then renamed into place: a reader of the final name
 * never sees a partial file. Existing destination files are replaced.
 * @returns whether the source was a directory, and the base name of a copied file.
 */
export async function publish(source: Location, destination: Location, job: Job, options: TransferOptions): Promise<{ directory: boolean; name: string }> {
  return withBackend(source.endpoint, options, (from) =>
    withBackend(destination.endpoint, options, async (to) => {
      const root = await from.stat(source.path, job.signal)
      if (source.isDirectory && root.type !== 'directory') {
        throw new PublishError('ERR_NOT_A_DIRECTORY', `${source.path} is a file, but the source URL ends with '/'`)
      }
      const name = posix.basename(source.path)
      if (root.type === 'file') {
        const target = destination.isDirectory ? posix.join(destination.path, name) : destination.path
        const progress = new ProgressCounter(job, root.size, 1)
        await copyFile(from, source.path, root.size, to, target, job, progress)
        return { directory: false, name }
      }
      const { files, dirs } = await walk(from, source.path, job.signal)
      const progress = new ProgressCounter(job, files.reduce((sum, f) => sum + f.size, 0), files.length)
      await to.mkdir(destination.path, job.signal)
      for (const dir of dirs) await to.mkdir(posix.join(destination.path, dir), job.signal)
      // Each file holds a connection on both sides: half the host cap keeps one task from starving itself.
      const lanes = Math.max(1, Math.min(options.parallelFiles, Math.floor(options.connectionsPerHost / 2)))
      await forEachLimited(files, lanes, job.signal, (file) =>
        copyFile(from, posix.join(source.path, file.rel), file.size, to, posix.join(destination.path, file.rel), job, progress),
      )
      return { directory: true, name }
    }),
  )
}

async function copyFile(from: Backend, sourcePath: string, size: number, to: Backend, targetPath: string, job: Job, progress: ProgressCounter): Promise<void> {
  const temporary = to.features.atomicRename ? temporaryName(targetPath, job.taskId) : targetPath
  const counter = progress.counter()
  try {
    const body = await from.read(sourcePath, job.signal)
    // pipeline, not pipe: a source failing mid-way must fail the write too. The error is seen there.
    await to.write(temporary, pipeline(body, counter, () => {}), job.signal)
    const written = await to.stat(temporary, job.signal)
    if (written.size !== size || counter.bytes !== size) {
      throw new PublishError('ERR_VERIFY', `${targetPath}: ${written.size} bytes written, ${counter.bytes} read, ${size} expected`)
    }
    if (temporary !== targetPath) await to.rename(temporary, targetPath, job.signal)
    progress.fileDone()
  } catch (e) {
    counter.rollback()
    if (temporary !== targetPath) await to.remove(temporary, AbortSignal.timeout(10_000)).catch(() => {})
    throw e
  }
}

/** `.name.apubi-<task>.part` beside the target: hidden from listings, the same on every attempt. */
function temporaryName(targetPath: string, taskId: string): string {
  return posix.join(posix.dirname(targetPath), `.${posix.basename(targetPath)}.apubi-${taskId.slice(0, 8)}.part`)
}

/** Sums bytes and files of all the files of one task and reports them, at most every 250 ms. */
class ProgressCounter {
  private bytesDone = 0
  private filesDone = 0
  private lastReport = 0
  constructor(
    private readonly job: Job,
    private readonly bytesTotal: number,
    private readonly filesTotal: number,
  ) {
    this.report(true)
  }

  counter(): ByteCounter {
    return new ByteCounter((n) => {
      this.bytesDone += n
      this.report(false)
    })
  }

  fileDone(): void {
    this.filesDone++
    this.report(true)
  }

  private report(force: boolean): void {
    const now = Date.now()
    if (!force && now - this.lastReport < 250) return
    this.lastReport = now
    const { bytesDone, bytesTotal, filesDone, filesTotal } = this
    this.job.onProgress({ bytesDone, bytesTotal, filesDone, filesTotal })
  }
}

class ByteCounter extends Transform {
  bytes = 0
  constructor(private readonly onBytes: (n: number) => void) {
    super()
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.onBytes(chunk.length)
    done(null, chunk)
  }

  /** A failed file's bytes no longer count as done. */
  rollback(): void {
    this.onBytes(-this.bytes)
    this.bytes = 0
  }
}
