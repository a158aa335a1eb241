import type { Readable } from 'node:stream'

/** URL schemes that name a storage location. */
export type Scheme = 'file' | 'ftp' | 'ftps' | 'ftpes' | 'sftp' | 'http' | 'https' | 's3'

/** Where a backend connects: one server and one identity. Paths are given per call. */
export interface Endpoint {
  readonly scheme: Scheme
  /** Empty for `file`; the bucket for `s3`. */
  readonly host: string
  /** 0 for `file` and `s3`; otherwise the URL's port or the scheme's default. */
  readonly port: number
  readonly user?: string
  /** A secret: never logged, never put into an error message. */
  readonly password?: string
  /** PEM private key for SFTP, from the per-host credentials or APUBI_SSH_PRIVATE_KEY. A secret. */
  readonly privateKey?: string
  /**
   * HTTP(S) only: the source URL's query (`?token=…`), sent with every request to this endpoint,
   * as CDN token schemes expect for a package's playlists and segments. May be a secret.
   */
  readonly query?: string
}

export interface Entry {
  /** The path as given to the backend, for `list` the directory joined with the name. */
  readonly path: string
  readonly type: 'file' | 'directory'
  /** Bytes; 0 for directories. */
  readonly size: number
}

export interface Features {
  /**
   * Whether `rename` replaces the target in one step, so a file can appear under its final name
   * whole. Where false (S3), `write` itself must never expose a partial object (multipart upload).
   */
  readonly atomicRename: boolean
  /** False for read-only sources (HTTP): write, rename, remove and mkdir raise ERR_PERMISSION. */
  readonly writable: boolean
  /** `write` accepts `{ append: true }`: an interrupted upload can continue where it stopped. */
  readonly append: boolean
  /**
   * Directories exist only through what is under them (object stores): `write` needs none made
   * first, and the copy makes none, so publishing leaves no marker objects behind.
   */
  readonly implicitDirectories?: boolean
}

export type HashAlgorithm = 'md5' | 'sha256'

export interface WriteOptions {
  /** Add to the end of an existing file instead of replacing it (only where `features.append`). */
  readonly append?: boolean
  /**
   * Names this upload (the task id) so that, where the backend offers `uploadedSoFar`, a later write of
   * the same path and tag can continue it.
   */
  readonly uploadTag?: string
  /**
   * The body starts at this byte. With `append`: the size the caller just found at `path` (0 for
   * none), which spares a backend that writes at explicit offsets (SFTP) a look of its own. With
   * `uploadTag`: the bytes `uploadedSoFar` reported stored; when they are no longer there, `write`
   * fails with ERR_TRANSFER (and the next attempt starts again).
   */
  readonly resumeFrom?: number
  /** With `uploadTag`: a failure worth retrying keeps what was stored for a later `resumeFrom`. */
  readonly keepPartsOnError?: boolean
  /**
   * Called once the whole body and the requests that end the write are sent, before the storage
   * confirmed them, where the backend can tell (SFTP): the caller may start its next write, whose
   * first request then travels with them. The returned promise still says how the write ended.
   */
  readonly onSent?: () => void
}

/**
 * One storage system, reached through one endpoint. Paths are POSIX-style strings in the backend's
 * own namespace (an absolute file system path for `file`, the server path for `ftp`).
 *
 * Every method raises only PublishError with a catalogued code (the library's error as `cause`), and
 * gives up when `signal` aborts.
 */
export interface Backend {
  readonly scheme: Scheme
  readonly features: Features
  /** ERR_NOT_FOUND when nothing exists at `path`. */
  stat(path: string, signal: AbortSignal): Promise<Entry>
  /** The direct children of `dir`. ERR_NOT_FOUND if absent, ERR_NOT_A_DIRECTORY if a file. */
  list(dir: string, signal: AbortSignal): Promise<Entry[]>
  /**
   * Optional: every file below `dir`, at any depth, in as few requests as the storage allows (an
   * object store's flat listing). Absent: callers walk `list` folder by folder.
   */
  listTree?(dir: string, signal: AbortSignal): Promise<Entry[]>
  /**
   * A stream of the file's bytes from `offset` (default 0) to the end; the backend's resources are
   * freed when it ends or is destroyed. ERR_NOT_FOUND rejects `read` itself, not the stream.
   */
  read(path: string, signal: AbortSignal, offset?: number): Promise<Readable>
  /**
   * Writes `body` to `path`, replacing an existing file and making missing parent directories.
   * Resolves once the storage confirmed the whole file; on failure nothing is left at `path`,
   * except with `append`, where what was written stays for a later attempt to continue.
   * Resolves with the file's size where the storage reports it within the write's own exchange
   * (SFTP, FTP), sparing the caller a `stat`.
   */
  write(path: string, body: Readable, signal: AbortSignal, options?: WriteOptions): Promise<number | void>
  /**
   * Bytes from the start of `path` that an interrupted `write` tagged `uploadTag` already stored for
   * good (S3: whole multipart parts), 0 if none: pass them as `resumeFrom` to continue that upload.
   * Optional: for storage that writes in place and cannot append, yet can continue an upload.
   */
  uploadedSoFar?(path: string, uploadTag: string, signal: AbortSignal): Promise<number>
  /** Moves a file, replacing `to` if it exists. ERR_NOT_FOUND if `from` is absent. */
  rename(from: string, to: string, signal: AbortSignal): Promise<void>
  /** Removes a file or an empty directory. ERR_NOT_FOUND if absent. */
  remove(path: string, signal: AbortSignal): Promise<void>
  /** Makes a directory and its missing parents; no error if it exists. */
  mkdir(path: string, signal: AbortSignal): Promise<void>
  /**
   * The file's digest as the storage computes it (FTP HASH/XMD5, S3 checksums), in lower-case hex;
   * undefined when the storage cannot tell. Optional: absent where the protocol has no such command.
   */
  hash?(path: string, algorithm: HashAlgorithm, signal: AbortSignal): Promise<string | undefined>
  /**
   * Removes the directory `dir` and everything below it, faster than `list` + `remove` per file (S3:
   * DeleteObjects, 1,000 keys a request). Nothing there is no error. Optional: callers walk otherwise.
   */
  removeTree?(dir: string, signal: AbortSignal): Promise<void>
  /**
   * Every file of the streaming package (HLS `.m3u8`, DASH `.mpd`) whose manifest is at
   * `manifestPath`, the manifest included: `rel` below the manifest's directory, `path` for `read`,
   * and for each manifest or playlist the `body` read to list it (publish those bytes, not a second
   * read: a just-in-time packager may answer differently). Optional: for storage without directory
   * listings (HTTP), where the manifest is the listing.
   */
  listPackage?(manifestPath: string, signal: AbortSignal): Promise<PackageEntry[]>
  /** Frees every connection. The backend is unusable afterwards. */
  close(): Promise<void>
}

/** A file of a streaming package, as `listPackage` gives it. */
export interface PackageEntry {
  readonly rel: string
  readonly path: string
  readonly body?: Buffer
}

/** What every backend shares with the others of the process. */
export interface BackendContext {
  /** Caps the connections open to one host across all tasks. */
  readonly hosts: HostLimiter
  /** Connect and idle timeout for network backends. */
  readonly timeoutMs: number
  /** PEM CA certificates trusted for TLS (FTPS, HTTPS, S3) besides Node's bundle. */
  readonly tlsCa?: string
  readonly ssh: SshOptions
  readonly s3: S3Options
  /**
   * The location policy, where connections and file paths are checked as they are made. Absent only
   * where a backend is tested alone: then nothing is checked.
   */
  readonly guard?: LocationGuard
}

/** What a network connection is for: the policy judges its address for this scheme, host and port. */
export interface ConnectTarget {
  readonly scheme: Scheme
  /** The host to resolve and connect to: a name or an address (IPv6 with or without brackets). */
  readonly host: string
  readonly port: number
  /** For s3: the bucket, which the rules see as the host name while `host` is the store's. */
  readonly bucket?: string
}

/** An address to connect to, as `dns.lookup` gives it. */
export interface CheckedAddress {
  readonly address: string
  readonly family: 4 | 6
}

/**
 * The location policy as backends meet it. Resolving and checking happen in one step, and the
 * connection is made to the address checked, so a name that answers differently a moment later
 * (DNS rebinding) gains nothing.
 */
export interface LocationGuard {
  /**
   * Every address `target.host` resolves to (an address literal: itself, normalised), each allowed.
   * @throws PublishError ERR_POLICY_DENIED when any of them is denied; the resolver's error
   *   (ENOTFOUND, EAI_AGAIN…) when the name does not resolve.
   */
  addressesFor(target: ConnectTarget): Promise<CheckedAddress[]>
  /**
   * A URL the backend is sent to by the storage (an HTTP redirect), judged as a request's URL is;
   * the addresses of a host name are judged when connecting. @throws PublishError ERR_POLICY_DENIED
   */
  checkUrl(url: string): void
  /** A file path as the file system resolves it now. @throws PublishError ERR_POLICY_DENIED */
  checkFile(path: string): void
}

export interface SshOptions {
  /** OpenSSH known_hosts file; with `accept-new`, first-seen host keys are appended to it. */
  readonly knownHostsFile: string
  readonly hostKeyPolicy: 'strict' | 'accept-new'
  /** Told of every host key trusted on first sight, so that it never happens silently. */
  readonly onKeyRecorded?: (line: string) => void
}

export interface S3BucketOptions {
  readonly endpoint?: string
  readonly region?: string
  readonly forcePathStyle?: boolean
  readonly accessKeyId?: string
  /** A secret. */
  readonly secretAccessKey?: string
}

export interface S3Options extends S3BucketOptions {
  readonly region: string
  /** Overrides per bucket name. */
  readonly buckets: Readonly<Record<string, S3BucketOptions>>
}

export interface HostLimiter {
  /** Waits for a free connection slot to `key` (scheme://host:port); call the returned function to free it. */
  acquire(key: string, signal: AbortSignal): Promise<() => void>
  /** The hosts with connections open or awaited in this process, for metrics; absent: not known. */
  inUse?(): Array<{ readonly host: string; readonly connections: number; readonly waiting: number }>
}

export type BackendFactory = (endpoint: Endpoint, context: BackendContext) => Backend
