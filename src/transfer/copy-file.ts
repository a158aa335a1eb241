import { posix } from 'node:path'
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream'
import type { Backend, HashAlgorithm } from '../backends/index.js'
import { asPublishError, isPublishError, PublishError, type Code } from '../errors.js'
import { DigestStream, type Digests } from './digest.js'
import type { Job, PublishedFile } from './job.js'
import type { ProgressCounter } from './progress.js'

/** One file to copy: where from, where to, and its path relative to the published root. */
export interface FileCopy {
  readonly from: Pick<Backend, 'read'>
  readonly sourcePath: string
  readonly size: number
  readonly to: Backend
  readonly targetPath: string
  readonly rel: string
  /**
   * The target's directory was not there when this attempt began: no earlier attempt left a
   * temporary file in it to continue, and none is looked for.
   */
  readonly targetIsNew?: boolean
}

/**
 * Failures after which a partial temporary file is worth keeping for the next attempt to continue (after
 * a lost lease, the task's new owner continues it). A cancel or an overall timeout keeps nothing.
 */
const RESUMABLE_AFTER: ReadonlySet<Code> = new Set(['ERR_TRANSFER', 'ERR_UNREACHABLE', 'ERR_SHUTDOWN', 'ERR_LEASE_LOST'])

/** A file on its way: all of it sent (where the destination tells), else written, checked and renamed. */
export interface Landed {
  /**
   * Its record (`job.onFile`, with its digests) and its count in the progress, once it is at its
   * final name and the hashing threads are done with it: they finish a small file only after all of
   * it has flowed through, and the copy of the next file need not wait for them meanwhile. Rejects
   * if the rename, the hashing or the record failed.
   */
  readonly recorded: Promise<void>
}

/**
 * Copies one file: to a temporary name (unless the destination writes objects whole), computing
 * the `checksums` on the way, checking the size and, where the storage can tell, the digest, then
 * renaming it into place (the file never shows under its final name before it is whole and
 * checked). Where the destination can append, a temporary file left by an
 * interrupted attempt is continued from its end rather than written again; where it writes in place
 * but keeps an upload in pieces (`uploadedSoFar`), that upload is continued after its stored pieces.
 * Resolves once the file is in place, or, where the destination tells (`WriteOptions.onSent`), once
 * all of it is sent; its confirmation, checks, rename and record follow (`Landed`).
 */
export async function copyFile(copy: FileCopy, job: Job, progress: ProgressCounter, checksums: readonly HashAlgorithm[]): Promise<Landed> {
  const { from, to, sourcePath, targetPath, size, rel } = copy
  const { signal } = job
  if (await publishedEarlier(copy, job)) {
    progress.add(size)
    progress.fileDone()
    return { recorded: Promise.resolve() }
  }
  const inPlace = !to.features.atomicRename
  const temporary = inPlace ? targetPath : temporaryName(targetPath, job.taskId)
  const resumable = to.features.append && !inPlace
  // In place, an upload the storage keeps in pieces (S3 multipart) may be continued instead.
  const continuesUpload = inPlace && to.uploadedSoFar !== undefined
  const offset = resumable ? (copy.targetIsNew ? 0 : await resumeOffset(to, temporary, size, signal)) : continuesUpload ? await uploadedOffset(to, targetPath, size, job.taskId, signal) : 0
  const digest = checksums.length > 0 ? new DigestStream(checksums) : undefined
  const counter = progress.counter()
  const digests = digest?.digests ?? Promise.resolve({})
  // Where the destination tells (SFTP), the lane moves on once the file's last requests are sent:
  // the next file's open travels with them, and this file lands (checked, renamed) meanwhile.
  let sent: () => void = () => {}
  const allSent = new Promise<void>((resolve) => (sent = resolve))
  let landing: Promise<PublishedFile['verifiedBy']>
  try {
    // Resuming with digests, the bytes already written are hashed first: read back from the temporary
    // file, before the write opens its own connection (two at once to one host could wait on each
    // other for slots under a tight cap). Parts of an unfinished upload cannot be read back: then the
    // source's prefix is read and hashed instead, and not sent again.
    let skip = 0
    if (digest && offset > 0) {
      if (continuesUpload) skip = offset
      else await digest.absorb(await to.read(temporary, signal))
    }
    progress.add(offset)
    const onSent = () => sent()
    const options = continuesUpload ? { uploadTag: job.taskId, resumeFrom: offset, keepPartsOnError: !job.lastAttempt, onSent } : { append: resumable, resumeFrom: offset, onSent }
    // To a temporary name, the destination opens while the source does, their round trips side by
    // side. In place, a source that turns out to be missing must leave the target untouched.
    const writing = inPlace ? undefined : to.write(temporary, counter, signal, options)
    void writing?.catch(() => {}) // awaited below, once the source is open
    let bytes: Readable
    try {
      bytes = await from.read(sourcePath, signal, offset - skip)
    } catch (e) {
      counter.destroy()
      await writing?.catch(() => {})
      throw e
    }
    // pipeline, not pipe: a source failing mid-way must fail the write too. The error is seen there,
    // through the counter, the last stage: what the destination reads.
    pipeline([bytes, ...(digest ? [digest] : []), ...(skip > 0 ? [new SkipBytes(skip)] : []), counter], () => {})
    landing = land(writing ?? to.write(temporary, counter, signal, options)).catch(undo)
  } catch (e) {
    return await undo(e)
  }
  void landing.catch(() => {}) // in `recorded`
  // A failure before everything was sent rejects here, already undone.
  await Promise.race([allSent, landing])
  const record = (verifiedBy: PublishedFile['verifiedBy'], d: Digests): void => {
    job.onFile?.({ rel, size, ...d, verifiedBy, resumedFrom: offset })
    progress.fileDone()
  }
  return { recorded: landing.then((verifiedBy) => digests.then((d) => record(verifiedBy, d))) }

  /**
   * Once `writing` is confirmed: checks the size and, where the storage can tell, the digest, and
   * only then, the file whole, gives it its final name.
   */
  async function land(writing: Promise<number | void>): Promise<PublishedFile['verifiedBy']> {
    const reported = await writing
    const written = typeof reported === 'number' ? reported : (await to.stat(temporary, signal)).size
    const read = offset + counter.bytes
    if (written !== size || read !== size) {
      throw new PublishError('ERR_VERIFY', `${rel}: ${written} bytes written, ${read} read, ${size} expected`)
    }
    // Our digests are awaited only where the destination reports one to compare (few do); elsewhere
    // the file lands while the hashing threads finish it.
    const verifiedBy = await verify(to, temporary, checksums, digests, rel, signal)
    if (!inPlace) await to.rename(temporary, targetPath, signal)
    return verifiedBy
  }

  /** Takes the failed file's bytes back and removes its temporary file, unless worth resuming; rethrows. */
  async function undo(e: unknown): Promise<never> {
    counter.rollback()
    progress.add(-offset)
    digest?.destroy()
    // An abort says why in its signal: the error the backend raised for it only says "aborted".
    const why = asPublishError(signal.aborted ? signal.reason : e)
    const keep = resumable && RESUMABLE_AFTER.has(why.code) && !job.lastAttempt
    if (!inPlace && !keep) await to.remove(temporary, AbortSignal.timeout(10_000)).catch(() => {})
    throw e
  }
}

/** `.name.apubi-<task>.part` beside the target: hidden from listings, the same on every attempt. */
export function temporaryName(targetPath: string, taskId: string): string {
  return posix.join(posix.dirname(targetPath), `.${posix.basename(targetPath)}.apubi-${taskId.slice(0, 8)}.part`)
}

/** An earlier attempt of this task published the file, and it is still there whole. */
async function publishedEarlier({ to, targetPath, size, rel }: FileCopy, job: Job): Promise<boolean> {
  if (job.completed?.get(rel)?.size !== size) return false
  return (await sizeAt(to, targetPath, job.signal)) === size
}

/** Where to continue a temporary file an interrupted attempt left; 0 to start afresh. */
async function resumeOffset(to: Backend, temporary: string, size: number, signal: AbortSignal): Promise<number> {
  const existing = await sizeAt(to, temporary, signal)
  if (existing === undefined) return 0
  if (existing < size) return existing
  // As long as the source or longer: not a prefix of this source, so not ours to continue.
  await to.remove(temporary, signal)
  return 0
}

/** Where to continue an upload an interrupted attempt left (whole parts only); 0 to start afresh. */
async function uploadedOffset(to: Backend, targetPath: string, size: number, taskId: string, signal: AbortSignal): Promise<number> {
  const stored = (await to.uploadedSoFar?.(targetPath, taskId, signal)) ?? 0
  // Longer than the source: not this source's upload. `write` from 0 abandons it.
  return stored <= size ? stored : 0
}

async function sizeAt(backend: Backend, path: string, signal: AbortSignal): Promise<number | undefined> {
  try {
    const entry = await backend.stat(path, signal)
    return entry.type === 'file' ? entry.size : undefined
  } catch (e) {
    if (isPublishError(e, 'ERR_NOT_FOUND')) return undefined
    throw e
  }
}

/**
 * Compares our digest with the one the storage reports, strongest first; 'size' when it reports none.
 * Ours (`digests`, of the `checksums`) is awaited only once the storage has reported one.
 */
async function verify(to: Backend, path: string, checksums: readonly HashAlgorithm[], digests: Promise<Digests>, rel: string, signal: AbortSignal): Promise<PublishedFile['verifiedBy']> {
  if (!to.hash) return 'size'
  for (const algorithm of ['sha256', 'md5'] as const) {
    if (!checksums.includes(algorithm)) continue
    const reported = await to.hash(path, algorithm, signal)
    if (reported === undefined) continue
    const ours = (await digests)[algorithm]
    if (reported !== ours) throw new PublishError('ERR_VERIFY', `${rel}: the destination reports ${algorithm} ${reported}, we sent ${ours}`)
    return algorithm
  }
  return 'size'
}

/** Drops the first `count` bytes: those an earlier attempt already wrote. */
class SkipBytes extends Transform {
  constructor(private count: number) {
    super()
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    if (this.count === 0) return done(null, chunk)
    const skipped = Math.min(this.count, chunk.length)
    this.count -= skipped
    done(null, skipped === chunk.length ? undefined : chunk.subarray(skipped))
  }
}
