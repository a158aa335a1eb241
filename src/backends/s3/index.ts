import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { isIP } from 'node:net'
import { Readable } from 'node:stream'
import { rootCertificates } from 'node:tls'
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type HeadObjectCommandOutput,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3'
import { PublishError, type Code } from '../../errors.js'
import { REDACTED } from '../../observability/index.js'
import { checkedAddresses, checkedLookup, unbracketed } from '../checked-lookup.js'
import { codeFor } from './errors.js'
import { ObjectReader } from './reader.js'
import { abandon, forgetRecord, partsOf, putWhole, readRecord, recordedBytes, untilStopped, uploadParts } from './upload.js'
import type { Backend, BackendContext, BackendFactory, ConnectTarget, Endpoint, Entry, HashAlgorithm, S3BucketOptions, WriteOptions } from '../types.js'

/** Tuning of uploads; the defaults suit production, tests make parts small to exercise multipart. */
export interface S3BackendOptions {
  /**
   * Bytes per multipart part (5 MiB at least). S3 allows 10,000 parts and a body's length is not known
   * up front, so this caps an object: 8 MiB parts reach 78 GiB.
   */
  readonly partSizeBytes?: number
  /** Parts of one upload in flight; an upload holds about (queueSize + 1) × partSizeBytes in memory. */
  readonly queueSize?: number
}

const MiB = 1 << 20
const DEFAULT_PART_SIZE_BYTES = 8 * MiB
const DEFAULT_QUEUE_SIZE = 3
// Sockets of one backend (one task): its uploads' parts in flight, a download and a few lookups.
const MAX_SOCKETS = 16
// DeleteObjects takes at most 1,000 keys a request, and ListObjectsV2 returns as many a page.
const DELETE_BATCH = 1000
// CopyObject copies 5 GiB at most; beyond it a multipart copy would be needed, which rename does not do.
const MAX_COPY_BYTES = 5 * 1024 * MiB
// S3's smallest part but the last.
const MIN_PART_SIZE_BYTES = 5 * MiB
/** Failures after which a tagged upload's parts are worth keeping for the next attempt to continue. */
const KEEP_PARTS_AFTER: ReadonlySet<Code> = new Set(['ERR_TRANSFER', 'ERR_UNREACHABLE', 'ERR_SHUTDOWN', 'ERR_LEASE_LOST'])

/**
 * Amazon S3 and S3-compatible stores (`s3://bucket/key`). The endpoint's host is the bucket; a path is
 * the key. Directories are key prefixes ending in '/', plus the empty `dir/` marker objects `mkdir`
 * leaves (as rclone's directory markers) so that an empty directory can exist.
 */
export const createS3Backend: BackendFactory = (endpoint, context) => new S3Backend(endpoint, context, {})

/** `createS3Backend` with upload tuning. */
export function openS3Backend(endpoint: Endpoint, context: BackendContext, options: S3BackendOptions): Backend {
  return new S3Backend(endpoint, context, options)
}

type Operation = 'stat' | 'list' | 'read' | 'write' | 'rename' | 'remove' | 'mkdir' | 'hash' | 'removeTree'

interface Connection {
  readonly client: S3Client
  /** The host limiter's key: the custom endpoint's host, or the bucket on AWS. */
  readonly origin: string
  /** The secret in use, if we hold it: scrubbed from every message. */
  readonly secret?: string
}

/**
 * A client for the endpoint's bucket: the global S3 settings overlaid with the bucket's own, keys from
 * the URL, then the bucket, then the global settings, else the SDK's chain (AWS_ACCESS_KEY_ID, profile,
 * instance role). Nothing connects until the first request.
 */
function connect(endpoint: Endpoint, context: BackendContext): Connection {
  const { buckets, ...shared } = context.s3
  const own = buckets[endpoint.host] ?? {}
  const keys = keysFor(endpoint, own, shared)
  const url = own.endpoint ?? shared.endpoint
  // Sockets connect to an address the location policy checked; the rules see the bucket as the host.
  const target = { scheme: 's3' as const, port: storePort(url), bucket: endpoint.host }
  const lookup = checkedLookup(context, target)
  const agent = { keepAlive: true, maxSockets: MAX_SOCKETS, ...(lookup && { lookup }) }
  const client = new S3Client({
    region: own.region ?? shared.region,
    ...(url && { endpoint: url }),
    forcePathStyle: own.forcePathStyle ?? shared.forcePathStyle ?? false,
    ...(keys && { credentials: keys }),
    // Checksums only where S3 demands them (DeleteObjects): the copy hashes the bytes itself, and many
    // S3-compatible stores reject the aws-chunked trailers the SDK otherwise adds to every upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      // Idle, not total: a large part on a slow link may take long, a silent socket may not.
      connectionTimeout: context.timeoutMs,
      socketTimeout: context.timeoutMs,
      httpAgent: new HttpAgent(agent),
      // `ca` replaces Node's bundle: the configured CAs are trusted besides it, not instead.
      httpsAgent: new HttpsAgent({ ...agent, ...(context.tlsCa && { ca: [...rootCertificates, context.tlsCa] }) }),
    },
  })
  if (context.guard) checkAddressLiterals(client, context, target)
  return { client, origin: `s3://${url ? new URL(url).host : endpoint.host}`, ...(keys && { secret: keys.secretAccessKey }) }
}

/** The port of the store at `url` (AWS, without one, is HTTPS). */
function storePort(url: string | undefined): number {
  if (!url) return 443
  const { port, protocol } = new URL(url)
  return port ? Number(port) : protocol === 'http:' ? 80 : 443
}

/**
 * A socket given an address (an endpoint such as `http://10.0.0.5:9000`) never calls `lookup`: such a
 * store is judged here, before each request is sent.
 */
function checkAddressLiterals(client: S3Client, context: BackendContext, target: Omit<ConnectTarget, 'host'>): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const { hostname } = args.request as { hostname?: string }
      if (hostname !== undefined && isIP(unbracketed(hostname)) !== 0) await checkedAddresses(context, { ...target, host: hostname })
      return next(args)
    },
    { step: 'finalizeRequest', name: 'apubiCheckStoreAddress' },
  )
}

/** Keys from the URL, else the first of `sources` that has both; undefined leaves it to the SDK's chain. */
function keysFor(endpoint: Endpoint, ...sources: S3BucketOptions[]): { accessKeyId: string; secretAccessKey: string } | undefined {
  if (endpoint.user !== undefined && endpoint.password !== undefined) return { accessKeyId: endpoint.user, secretAccessKey: endpoint.password }
  for (const { accessKeyId, secretAccessKey } of sources) {
    if (accessKeyId !== undefined && secretAccessKey !== undefined) return { accessKeyId, secretAccessKey }
  }
  return undefined
}

/** S3 keys have no leading slash, and the bucket itself is the empty key. */
const keyOf = (path: string): string => (path === '.' ? '' : path)

/** The prefix of the keys below a directory. */
const prefixOf = (key: string): string => (key === '' ? '' : `${key}/`)

/** x-amz-copy-source: the bucket and the key, each key segment percent-encoded. */
const copySource = (bucket: string, key: string): string => `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`

class S3Backend implements Backend {
  readonly scheme = 's3' as const
  // Objects appear whole when their upload completes: `write` goes to the final key, nothing to rename.
  readonly features = { atomicRename: false, writable: true, append: false, implicitDirectories: true }
  private readonly bucket: string
  private readonly connection: Connection
  /** Downloads and uploads in flight, stopped by `close`. */
  private readonly streams = new Set<() => void>()
  private closed = false

  constructor(
    endpoint: Endpoint,
    private readonly context: BackendContext,
    private readonly options: S3BackendOptions,
  ) {
    if (endpoint.host === '') throw new PublishError('ERR_REQUEST_INVALID', 's3:// URL names no bucket')
    this.bucket = endpoint.host
    this.connection = connect(endpoint, context)
  }

  private get partSizeBytes(): number {
    return Math.max(this.options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES)
  }

  async stat(path: string, signal: AbortSignal): Promise<Entry> {
    return this.call('stat', path, signal, async () => {
      const key = keyOf(path)
      if (key !== '') {
        const head = await this.head('stat', path, signal)
        if (head) return { path, type: 'file', size: head.ContentLength ?? 0 }
      }
      // The bucket is a directory even when empty; listing it also tells a missing bucket apart.
      if (holdsAny(await this.listPage(prefixOf(key), signal, { MaxKeys: 1 })) || key === '') return { path, type: 'directory', size: 0 }
      throw this.fail('ERR_NOT_FOUND', 'stat', path, 'no such key or prefix')
    })
  }

  async list(dir: string, signal: AbortSignal): Promise<Entry[]> {
    return this.call('list', dir, signal, async () => {
      const prefix = prefixOf(keyOf(dir))
      const entries = new Map<string, Entry>()
      let seen = false
      for (let token: string | undefined, more = true; more; ) {
        const page = await this.listPage(prefix, signal, { Delimiter: '/', ContinuationToken: token })
        seen ||= holdsAny(page)
        for (const { Prefix } of page.CommonPrefixes ?? []) {
          const name = Prefix?.slice(prefix.length, -1)
          // A key with '//' makes an empty name: no path can name it.
          if (name) entries.set(name, { path: childPath(dir, name), type: 'directory', size: 0 })
        }
        for (const { Key, Size } of page.Contents ?? []) {
          const name = Key?.slice(prefix.length)
          if (name) entries.set(name, { path: childPath(dir, name), type: 'file', size: Size ?? 0 }) // not the directory's own marker
        }
        token = page.NextContinuationToken
        more = Boolean(page.IsTruncated && token)
      }
      if (!seen && prefix !== '') {
        if (await this.head('list', dir, signal)) throw this.fail('ERR_NOT_A_DIRECTORY', 'list', dir, 'a file, not a directory')
        throw this.fail('ERR_NOT_FOUND', 'list', dir, 'no such prefix')
      }
      return [...entries.values()]
    })
  }

  /** Every object below `dir` from one flat, paged listing: a request per 1,000 keys, not per folder. */
  async listTree(dir: string, signal: AbortSignal): Promise<Entry[]> {
    return this.call('list', dir, signal, async () => {
      const prefix = prefixOf(keyOf(dir))
      const files: Entry[] = []
      for (let token: string | undefined, more = true; more; ) {
        const page = await this.listPage(prefix, signal, { ContinuationToken: token })
        for (const { Key, Size } of page.Contents ?? []) {
          const rel = Key?.slice(prefix.length)
          // Directory markers (keys ending in '/') are not files.
          if (rel && !rel.endsWith('/')) files.push({ path: childPath(dir, rel), type: 'file', size: Size ?? 0 })
        }
        token = page.NextContinuationToken
        more = Boolean(page.IsTruncated && token)
      }
      return files
    })
  }

  async read(path: string, signal: AbortSignal, offset = 0): Promise<Readable> {
    const key = keyOf(path)
    if (key === '') throw this.fail('ERR_NOT_FOUND', 'read', path, 'the bucket is not a file')
    const release = await this.slot('read', path, signal)
    try {
      const first = await this.call('read', path, signal, () => this.get(key, offset, undefined, signal))
      if (!first) {
        release()
        return Readable.from([]) // the offset is the object's end: nothing left to read
      }
      const reader = new ObjectReader(first.body, offset, first.size, {
        reopen: async (position) => (await this.get(key, position, first.etag, signal))?.body ?? Readable.from([]),
        fail: (e) => this.translate(e, 'read', path, signal),
      })
      const stop = (): void => void reader.destroy(this.fail('ERR_SHUTDOWN', 'read', path, signal.aborted ? 'aborted' : 'backend closed'))
      signal.addEventListener('abort', stop, { once: true })
      this.streams.add(stop)
      reader.once('close', () => {
        signal.removeEventListener('abort', stop)
        this.streams.delete(stop)
        release()
      })
      return reader
    } catch (e) {
      release()
      throw e
    }
  }

  /**
   * One PUT, or a multipart upload for bodies of a part or more: either way the object appears whole or
   * not at all, and a failed write leaves the key as it was. (Only an abort during the final request
   * can leave the new object, complete, when the store finished it anyway.) With `uploadTag`, a
   * multipart upload keeps a record beside the key (see upload.ts) so that `resumeFrom` can continue
   * it, and with `keepPartsOnError` a failure worth retrying leaves its parts for that.
   */
  async write(path: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<void> {
    // A body failing while we wait for a slot must not crash the process; the upload reports it.
    let bodyError: unknown
    body.on('error', (e) => (bodyError ??= e))
    if (options.append) {
      body.destroy()
      throw this.fail('ERR_INTERNAL', 'write', path, 'S3 cannot append to an object (features.append is false)')
    }
    const key = keyOf(path)
    if (key === '') {
      body.destroy()
      throw this.fail('ERR_REQUEST_INVALID', 'write', path, 'the bucket is not a file')
    }
    const release = await this.slot('write', path, signal).catch((e: unknown) => {
      body.destroy()
      throw e
    })
    // Every request of the upload carries this signal: the task's abort and `close` both stop them.
    const stopped = new AbortController()
    const stop = (): void => {
      stopped.abort()
      body.destroy() // a body waiting for its source would hold the upload open
    }
    signal.addEventListener('abort', stop, { once: true })
    this.streams.add(stop)
    const target = { client: this.connection.client, bucket: this.bucket, key, partSizeBytes: this.partSizeBytes, queueSize: this.options.queueSize ?? DEFAULT_QUEUE_SIZE, signal: stopped.signal }
    const { uploadTag, resumeFrom = 0 } = options
    let uploadId: string | undefined
    try {
      const earlier = uploadTag ? await readRecord(target, uploadTag) : undefined
      if (resumeFrom > 0 && (!earlier || recordedBytes(earlier, target.partSizeBytes) !== resumeFrom)) {
        // The body starts at `resumeFrom`: without those bytes stored, no object can be made of it.
        if (earlier && uploadTag) await abandon(target, earlier.uploadId, uploadTag, this.context.timeoutMs)
        throw this.fail('ERR_TRANSFER', 'write', path, `no stored upload holds the first ${resumeFrom} bytes; the next attempt starts again`)
      }
      // Not continuing an earlier upload: it is abandoned, not left billed.
      if (earlier && resumeFrom === 0) await abandon(target, earlier.uploadId, uploadTag, this.context.timeoutMs)
      const parts = partsOf(body, target.partSizeBytes)[Symbol.asyncIterator]()
      const first = await untilStopped(parts.next(), stopped.signal)
      if (resumeFrom === 0 && (first.done || first.value.length < target.partSizeBytes)) {
        await putWhole(target, first.done ? Buffer.alloc(0) : first.value)
      } else {
        const all = (async function* () {
          if (!first.done) yield first.value
          yield* { [Symbol.asyncIterator]: () => parts }
        })()
        await uploadParts(target, all, resumeFrom > 0 ? earlier : undefined, uploadTag, (id) => (uploadId = id), () => body.destroy())
        // Best effort: the object is whole; a record left behind is abandoned by the next write from 0.
        if (uploadTag) await forgetRecord(target, uploadTag).catch(() => {})
      }
    } catch (e) {
      body.destroy()
      // The body's own failure explains more than the request that failed after it.
      const error = this.translate(bodyError ?? e, 'write', path, signal)
      // An abort says why in its signal: after a cancel or an overall timeout no attempt continues.
      const why = signal.aborted && signal.reason instanceof PublishError ? signal.reason.code : error.code
      const keep = options.keepPartsOnError && uploadTag && KEEP_PARTS_AFTER.has(why)
      // Awaited: our caller may close the client right after, and parts left behind are billed.
      if (!keep) await abandon(target, uploadId, uploadTag, this.context.timeoutMs)
      throw error
    } finally {
      signal.removeEventListener('abort', stop)
      this.streams.delete(stop)
      release()
    }
  }

  /**
   * Bytes an interrupted upload of `path` tagged `uploadTag` holds as whole parts, from its record:
   * what `write` continues from with `resumeFrom`. 0 when there is none.
   */
  async uploadedSoFar(path: string, uploadTag: string, signal: AbortSignal): Promise<number> {
    return this.call('write', path, signal, async () => {
      const target = { client: this.connection.client, bucket: this.bucket, key: keyOf(path), partSizeBytes: this.partSizeBytes, queueSize: 1, signal }
      return recordedBytes(await readRecord(target, uploadTag), this.partSizeBytes)
    })
  }

  async rename(from: string, to: string, signal: AbortSignal): Promise<void> {
    await this.call('rename', from, signal, async () => {
      const head = await this.head('rename', from, signal)
      if (!head) throw this.fail('ERR_NOT_FOUND', 'rename', from, 'no such key')
      if ((head.ContentLength ?? 0) > MAX_COPY_BYTES) throw this.fail('ERR_INTERNAL', 'rename', from, 'objects over 5 GiB cannot be renamed (CopyObject limit)')
      if (from === to) return
      await this.connection.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: keyOf(to), CopySource: copySource(this.bucket, keyOf(from)) }), { abortSignal: signal })
      await this.connection.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: keyOf(from) }), { abortSignal: signal })
    })
  }

  async remove(path: string, signal: AbortSignal): Promise<void> {
    await this.call('remove', path, signal, async () => {
      const key = keyOf(path)
      if (key !== '' && (await this.head('remove', path, signal))) return this.deleteKey(key, signal)
      const page = await this.listPage(prefixOf(key), signal, { MaxKeys: 2 })
      const keys = (page.Contents ?? []).map((o) => o.Key)
      if (keys.length === 0 && key !== '') throw this.fail('ERR_NOT_FOUND', 'remove', path, 'no such key or prefix')
      if (keys.some((k) => k !== prefixOf(key))) throw this.fail('ERR_PERMISSION', 'remove', path, 'directory not empty')
      // An empty directory is at most its marker; the bucket itself stays.
      if (keys.length > 0) await this.deleteKey(prefixOf(key), signal)
    })
  }

  async mkdir(path: string, signal: AbortSignal): Promise<void> {
    await this.call('mkdir', path, signal, async () => {
      const key = keyOf(path)
      if (key !== '' && (await this.head('mkdir', path, signal))) throw this.fail('ERR_NOT_A_DIRECTORY', 'mkdir', path, 'a file is in the way')
      if (holdsAny(await this.listPage(prefixOf(key), signal, { MaxKeys: 1 })) || key === '') return
      // Parents need nothing: the marker's key makes them prefixes.
      await this.connection.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: prefixOf(key), Body: '', ContentLength: 0 }), { abortSignal: signal })
    })
  }

  async hash(path: string, algorithm: HashAlgorithm, signal: AbortSignal): Promise<string | undefined> {
    return this.call('hash', path, signal, async () => {
      const head = keyOf(path) === '' ? undefined : await this.head('hash', path, signal, algorithm === 'sha256')
      if (!head) throw this.fail('ERR_NOT_FOUND', 'hash', path, 'no such key')
      return algorithm === 'md5' ? md5Of(head) : sha256Of(head)
    })
  }

  /** Deletes every key below `dir` (its marker too), 1,000 a request. Nothing below it is no error. */
  async removeTree(dir: string, signal: AbortSignal): Promise<void> {
    await this.call('removeTree', dir, signal, async () => {
      const prefix = prefixOf(keyOf(dir))
      for (let token: string | undefined, more = true; more; ) {
        const page = await this.listPage(prefix, signal, { MaxKeys: DELETE_BATCH, ContinuationToken: token })
        const objects = (page.Contents ?? []).flatMap(({ Key }) => (Key === undefined ? [] : [{ Key }]))
        if (objects.length > 0) {
          const { Errors } = await this.connection.client.send(
            new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: objects, Quiet: true } }),
            { abortSignal: signal },
          )
          const [first] = Errors ?? []
          if (first) {
            const cause = Object.assign(new Error(first.Message ?? first.Code), { name: first.Code ?? 'Error' })
            throw this.fail(codeFor(cause), 'removeTree', first.Key ?? dir, `${Errors?.length} of ${objects.length} keys not deleted: ${first.Code} ${first.Message}`, cause)
          }
        }
        token = page.NextContinuationToken
        more = Boolean(page.IsTruncated && token)
      }
    })
  }

  async close(): Promise<void> {
    this.closed = true
    for (const stop of [...this.streams]) stop()
    // Destroys the agents: sockets in use and idle ones alike.
    this.connection.client.destroy()
  }

  /** Runs `work`; whatever it throws leaves as a PublishError. */
  private async call<T>(op: Operation, path: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    try {
      if (this.closed) throw new Error('backend closed')
      signal.throwIfAborted()
      return await work()
    } catch (e) {
      throw this.translate(e, op, path, signal)
    }
  }

  /** A host slot for one upload or download stream; metadata requests go through the bounded agent only. */
  private async slot(op: Operation, path: string, signal: AbortSignal): Promise<() => void> {
    return this.call(op, path, signal, () => this.context.hosts.acquire(this.connection.origin, signal))
  }

  /**
   * The object's metadata, or undefined when there is no such key. A HEAD answer has no body, so a 403
   * says neither "bad credentials" nor "not allowed": a listing, which has one, tells.
   */
  private async head(op: Operation, path: string, signal: AbortSignal, checksums = false): Promise<HeadObjectCommandOutput | undefined> {
    const key = keyOf(path)
    try {
      return await this.connection.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key, ...(checksums && { ChecksumMode: 'ENABLED' }) }),
        { abortSignal: signal },
      )
    } catch (e) {
      if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 404) return undefined
      if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 403) {
        await this.listPage(key, signal, { MaxKeys: 1 })
        throw this.fail('ERR_PERMISSION', op, path, 'access denied', e)
      }
      throw e
    }
  }

  private listPage(prefix: string, signal: AbortSignal, extra: { MaxKeys?: number; Delimiter?: string; ContinuationToken?: string | undefined }): Promise<ListObjectsV2CommandOutput> {
    return this.connection.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...extra }), { abortSignal: signal })
  }

  /** GetObject from `offset`, pinned to `etag` when given; undefined when `offset` is the object's end. */
  private async get(key: string, offset: number, etag: string | undefined, signal: AbortSignal): Promise<{ body: Readable; size: number; etag?: string } | undefined> {
    try {
      const out = await this.connection.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(offset > 0 && { Range: `bytes=${offset}-` }), ...(etag && { IfMatch: etag }) }),
        { abortSignal: signal },
      )
      const body = out.Body as Readable
      return { body, size: offset + (out.ContentLength ?? 0), ...(out.ETag && { etag: out.ETag }) }
    } catch (e) {
      if (offset > 0 && e instanceof S3ServiceException && e.$metadata.httpStatusCode === 416) return undefined
      throw e
    }
  }

  private async deleteKey(key: string, signal: AbortSignal): Promise<void> {
    await this.connection.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal })
  }

  private translate(e: unknown, op: Operation, path: string, signal: AbortSignal): PublishError {
    if (e instanceof PublishError) return e
    if (signal.aborted || this.closed) return this.fail('ERR_SHUTDOWN', op, path, signal.aborted ? 'aborted' : 'backend closed', e)
    if (!(e instanceof Error)) return this.fail('ERR_INTERNAL', op, path, String(e), e)
    if (e.name === 'NoSuchBucket') return this.fail('ERR_NOT_FOUND', op, path, `bucket ${this.bucket} does not exist`, e)
    // The S3 code or the socket's says more than the message alone ("UnknownError" for a bodiless HEAD).
    const label = (e as NodeJS.ErrnoException).code ?? e.name
    return this.fail(codeFor(e), op, path, label === 'Error' ? e.message : `${label}: ${e.message}`, e)
  }

  /** An error naming the operation, `s3://bucket/key` and why; the secret key never shows. */
  private fail(code: Code, op: Operation, path: string, why: string, cause?: unknown): PublishError {
    const { secret } = this.connection
    const reason = secret ? why.split(secret).join(REDACTED) : why
    return new PublishError(code, `${op} s3://${this.bucket}/${keyOf(path)}: ${reason}`, { cause })
  }
}

/** Whether a listing page has a key or a common prefix (KeyCount counts both on AWS, keys only elsewhere). */
function holdsAny(page: ListObjectsV2CommandOutput): boolean {
  return (page.Contents?.length ?? 0) + (page.CommonPrefixes?.length ?? 0) > 0
}

function childPath(dir: string, name: string): string {
  return dir === '.' || dir === '' ? name : `${dir}/${name}`
}

/** The ETag, where it is the object's MD5: one-part uploads not encrypted with KMS or a customer key. */
function md5Of(head: HeadObjectCommandOutput): string | undefined {
  const etag = head.ETag?.replace(/"/g, '') ?? ''
  const encrypted = head.SSECustomerAlgorithm !== undefined || String(head.ServerSideEncryption ?? '').startsWith('aws:kms')
  return /^[0-9a-f]{32}$/i.test(etag) && !encrypted ? etag.toLowerCase() : undefined
}

/** The stored SHA-256 in hex, where it covers the whole object (not a multipart checksum of checksums). */
function sha256Of(head: HeadObjectCommandOutput): string | undefined {
  const checksum = head.ChecksumSHA256
  if (!checksum || checksum.includes('-') || head.ChecksumType === 'COMPOSITE') return undefined
  const digest = Buffer.from(checksum, 'base64')
  return digest.length === 32 ? digest.toString('hex') : undefined
}
