import { posix } from 'node:path'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3'

/**
 * What an upload that may be continued keeps beside its key: its id and the parts 1..n stored whole,
 * in order. ListMultipartUploads and ListParts would tell the same, but they return no metadata to
 * tell our upload from another writer's, and S3-compatible stores often lack them (s3rver does), so
 * the upload keeps its own record, a tiny object removed once the upload completes or is abandoned.
 */
export interface UploadRecord {
  readonly uploadId: string
  readonly partSizeBytes: number
  readonly parts: ReadonlyArray<{ readonly PartNumber: number; readonly ETag: string }>
}

export interface MultipartTarget {
  readonly client: S3Client
  readonly bucket: string
  readonly key: string
  readonly partSizeBytes: number
  readonly queueSize: number
  readonly signal: AbortSignal
}

/** `.name.apubi-<tag>.upload` beside the key: hidden like the temporary files of other backends. */
export function recordKey(key: string, uploadTag: string): string {
  const dir = posix.dirname(key)
  const name = `.${posix.basename(key)}.apubi-${uploadTag.slice(0, 8)}.upload`
  return dir === '.' ? name : `${dir}/${name}`
}

/** The record of an earlier upload tagged `uploadTag`, undefined if none (or unreadable: start afresh). */
export async function readRecord(t: MultipartTarget, uploadTag: string): Promise<UploadRecord | undefined> {
  try {
    const out = await t.client.send(new GetObjectCommand({ Bucket: t.bucket, Key: recordKey(t.key, uploadTag) }), { abortSignal: t.signal })
    const record = JSON.parse(await out.Body!.transformToString()) as UploadRecord
    return typeof record.uploadId === 'string' && Array.isArray(record.parts) ? record : undefined
  } catch (e) {
    if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 404) return undefined
    if (e instanceof SyntaxError) return undefined
    throw e
  }
}

/** Bytes the recorded upload holds as whole parts of the current part size; 0 when none usable. */
export function recordedBytes(record: UploadRecord | undefined, partSizeBytes: number): number {
  return record && record.partSizeBytes === partSizeBytes ? record.parts.length * partSizeBytes : 0
}

/**
 * Uploads `parts` (all `partSizeBytes` long but the last) after those of `earlier`, then completes
 * the upload. With `uploadTag`, the record is rewritten each time the run of stored parts
 * grows, so that a crash at any moment leaves a record naming only parts that exist. Rejects with the
 * first failure (after `stopBody`, so that a body waiting for its source ends too); `started` tells the
 * caller the upload's id, so that it can abort or keep it.
 */
export async function uploadParts(
  t: MultipartTarget,
  parts: AsyncIterable<Buffer>,
  earlier: UploadRecord | undefined,
  uploadTag: string | undefined,
  started: (uploadId: string) => void,
  stopBody: () => void,
): Promise<void> {
  const { client, bucket, key, signal, partSizeBytes } = t
  let uploadId = earlier?.uploadId
  if (!uploadId) {
    const created = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...(uploadTag && { Metadata: { 'apubi-upload': uploadTag } }) }),
      { abortSignal: signal },
    )
    uploadId = created.UploadId!
  }
  started(uploadId)
  // The first failure of a part or of the record; `failed` settles with it to end the wait for the body.
  let failure: unknown
  let partFailed = (): void => {}
  const failed = new Promise<void>((resolve) => (partFailed = resolve))
  const done = new Map<number, { ETag: string; whole: boolean }>((earlier?.parts ?? []).map((p) => [p.PartNumber, { ETag: p.ETag, whole: true }]))
  // Parts 1..contiguous are stored and whole: what a resume may build on.
  let contiguous = done.size
  let recording: Promise<void> = Promise.resolve()
  const record = (): void => {
    const stored = Array.from({ length: contiguous }, (_, i) => ({ PartNumber: i + 1, ETag: done.get(i + 1)!.ETag }))
    const text = JSON.stringify({ uploadId, partSizeBytes, parts: stored } satisfies UploadRecord)
    // One after the other, so that an older, shorter record never lands after a newer one.
    recording = recording
      .then(() => putRecord(t, uploadTag!, text))
      .catch((e: unknown) => {
        failure ??= e
        partFailed()
      })
  }
  if (uploadTag && !earlier) record()

  const inFlight = new Set<Promise<void>>()
  const send = (number: number, part: Buffer): void => {
    const sending = client
      .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: part, ContentLength: part.length }), { abortSignal: signal })
      .then((out) => {
        done.set(number, { ETag: out.ETag!, whole: part.length === partSizeBytes })
        const before = contiguous
        // Only whole parts count for a resume: the last, short one is sent again with the rest.
        while (done.get(contiguous + 1)?.whole) contiguous++
        if (uploadTag && contiguous > before) record()
      })
      .catch((e: unknown) => {
        failure ??= e
        // The body may be waiting for its source: nothing else would end the loop below.
        stopBody()
        partFailed()
      })
      .finally(() => inFlight.delete(sending))
    inFlight.add(sending)
  }

  let number = contiguous
  const iterator = parts[Symbol.asyncIterator]()
  try {
    for (;;) {
      const next = await untilStopped(iterator.next(), signal, failed)
      if (next.done || failure) break
      send(++number, next.value)
      // Bounded memory: at most queueSize parts in flight plus the one being filled.
      while (inFlight.size >= t.queueSize) await Promise.race(inFlight)
    }
  } catch (e) {
    failure ??= e // unless the body ended because a part failed: that part's error says why
  }
  await Promise.all(inFlight)
  await recording
  if (failure) throw failure
  const all = [...done.entries()].sort(([a], [b]) => a - b).map(([PartNumber, { ETag }]) => ({ PartNumber, ETag }))
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: all } }), { abortSignal: signal })
}

/** One PUT for a body smaller than a part. */
export async function putWhole(t: MultipartTarget, body: Buffer): Promise<void> {
  await t.client.send(new PutObjectCommand({ Bucket: t.bucket, Key: t.key, Body: body, ContentLength: body.length }), { abortSignal: t.signal })
}

/** Best effort, under a signal of its own: the task's signal may be why the upload stopped. */
export async function abandon(t: MultipartTarget, uploadId: string | undefined, uploadTag: string | undefined, timeoutMs: number): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs)
  if (uploadId) await t.client.send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: t.key, UploadId: uploadId }), { abortSignal: signal }).catch(() => {})
  if (uploadTag) await t.client.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: recordKey(t.key, uploadTag) }), { abortSignal: signal }).catch(() => {})
}

/** Removes the record of a completed upload. */
export async function forgetRecord(t: MultipartTarget, uploadTag: string): Promise<void> {
  await t.client.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: recordKey(t.key, uploadTag) }), { abortSignal: t.signal })
}

/**
 * Not under the task's signal: a record write cut off by an abort can leave the record unreadable on
 * stores that write objects in place (s3rver did), and then the parts it named are lost to a resume.
 * It is a few hundred bytes; a timeout of its own bounds it.
 */
const RECORD_TIMEOUT_MS = 10_000

async function putRecord(t: MultipartTarget, uploadTag: string, text: string): Promise<void> {
  await t.client.send(new PutObjectCommand({ Bucket: t.bucket, Key: recordKey(t.key, uploadTag), Body: text, ContentType: 'application/json' }), { abortSignal: AbortSignal.timeout(RECORD_TIMEOUT_MS) })
}

/** The body cut into `size`-byte parts, the last one shorter (or none for an empty body). */
export async function* partsOf(body: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let held: Buffer[] = []
  let length = 0
  for await (const chunk of body) {
    let rest = chunk
    while (length + rest.length >= size) {
      const take = size - length
      held.push(rest.subarray(0, take))
      yield Buffer.concat(held)
      rest = rest.subarray(take)
      held = []
      length = 0
    }
    if (rest.length > 0) {
      held.push(rest)
      length += rest.length
    }
  }
  if (length > 0) yield Buffer.concat(held)
}

/**
 * `work`, unless `signal` aborts or `other` settles first. A body stalled on its source ignores its own
 * destruction (an async generator cannot return while it awaits), so waiting for it alone could hang.
 */
export async function untilStopped<T>(work: Promise<T>, signal: AbortSignal, other: Promise<void> = new Promise(() => {})): Promise<T> {
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  const ended = other.then(() => Promise.reject(new Error('the upload stopped')))
  // Settled later, after we stopped waiting: not unhandled rejections.
  work.catch(() => {})
  ended.catch(() => {})
  try {
    return await Promise.race([work, aborted, ended])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
