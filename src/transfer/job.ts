import { openBackend, type Backend, type BackendContext, type Endpoint, type HashAlgorithm } from '../backends/index.js'
import { throttleWrites, type TaskBandwidth } from './bandwidth.js'

/** How far a transfer is; reported while it runs. */
export interface Progress {
  readonly bytesDone: number
  readonly bytesTotal: number
  readonly filesDone: number
  readonly filesTotal: number
}

/** A file that reached its final name, checked. Paths are relative to the published root. */
export interface PublishedFile {
  readonly rel: string
  readonly size: number
  /** Lower-case hex digests of the bytes read from the source (those APUBI_CHECKSUMS asks for). */
  readonly md5?: string
  readonly sha256?: string
  /** The strongest check the destination could confirm. */
  readonly verifiedBy: 'size' | 'md5' | 'sha256'
  /** Bytes an interrupted attempt had written, which this one continued from (0: written whole). */
  readonly resumedFrom: number
}

/** What one task's transfer needs from its caller. */
export interface Job {
  /** Names temporary files, so a restarted task finds (and resumes or replaces) its own leftovers. */
  readonly taskId: string
  readonly signal: AbortSignal
  /** Called often; the caller decides how often to persist. */
  onProgress(progress: Progress): void
  /** No attempt follows this one: leave no temporary file behind, even a resumable one. */
  readonly lastAttempt?: boolean
  /** Files an earlier attempt of this task already published: skipped while still in place. */
  readonly completed?: ReadonlyMap<string, PublishedFile>
  /** Called once per file published, for the record and for a later attempt. */
  onFile?(file: PublishedFile): void
}

export interface TransferOptions {
  readonly backends: BackendContext
  /** Completes an endpoint with the credentials the server holds for its host. */
  readonly credentials: (endpoint: Endpoint) => Endpoint
  /** Digests computed while streaming; empty: none, the size alone is checked. */
  readonly checksums: readonly HashAlgorithm[]
  /** Files of one directory in flight at once to start with; more while round trips limit the copy (lanes.ts). */
  readonly parallelFiles: number
  readonly connectionsPerHost: number
  /** The bandwidth caps this task's writes draw from; absent: none. */
  readonly bandwidth?: TaskBandwidth
  /** Wraps the source backend, so that copies to several origins can share its reads (mirrors.ts). */
  readonly shareSource?: (source: Backend) => Backend
  /**
   * Extensions (lower case, no dot) of the files read as HLS or DASH manifests, to publish them after
   * what they reference and purge them first (APUBI_MANIFEST_EXTENSIONS); empty: none. Default m3u8, mpd.
   */
  readonly manifestExtensions?: readonly string[]
}

/** Opens a backend for the duration of `work` and always closes it. */
export async function withBackend<T>(endpoint: Endpoint, options: TransferOptions, work: (b: Backend) => Promise<T>): Promise<T> {
  const backend = throttleWrites(openBackend(options.credentials(endpoint), options.backends), options.bandwidth, endpoint.host)
  try {
    return await work(backend)
  } finally {
    await backend.close().catch(() => {})
  }
}

/** `withBackend` for a source: its reads go through `options.shareSource` when given. */
export function withSource<T>(endpoint: Endpoint, options: TransferOptions, work: (b: Backend) => Promise<T>): Promise<T> {
  return withBackend(endpoint, options, (backend) => work(options.shareSource?.(backend) ?? backend))
}

/**
 * Runs `work` over `items`, at most `limit` at once. The first failure (or the abort of `signal`)
 * starts no more and rejects, once the items in flight have settled: a file still on its way lands
 * or removes its temporary file before the task ends, never after. `grow`, asked each time a lane
 * finishes an item while others wait, opens one more lane when it says so.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, signal: AbortSignal, work: (item: T) => Promise<void>, grow?: (running: number) => boolean): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const lanes: Array<Promise<void>> = []
  const lane = async (): Promise<void> => {
    while (!failure && next < items.length) {
      try {
        signal.throwIfAborted() // like a failure: the items in flight settle first
        await work(items[next++]!)
      } catch (e) {
        failure ??= { error: e }
      }
      if (!failure && next < items.length && grow?.(lanes.length)) lanes.push(lane())
    }
  }
  for (let i = 0; i < Math.min(limit, items.length); i++) lanes.push(lane())
  // Lanes never reject; those opened meanwhile are appended, and awaited in turn.
  for (let i = 0; i < lanes.length; i++) await lanes[i]
  if (failure) throw failure.error
}

/** Every file below `dir`, depth first, paths relative to `dir` (POSIX separators). */
export async function walk(backend: Backend, dir: string, signal: AbortSignal): Promise<{ files: Array<{ rel: string; size: number }>; dirs: string[] }> {
  const files: Array<{ rel: string; size: number }> = []
  const dirs: string[] = []
  if (backend.listTree) {
    const base = dir === '.' ? '' : `${dir}/`
    for (const entry of await backend.listTree(dir, signal)) files.push({ rel: entry.path.slice(base.length), size: entry.size })
    return { files, dirs }
  }
  const visit = async (path: string, rel: string): Promise<void> => {
    for (const entry of await backend.list(path, signal)) {
      const name = entry.path.slice(entry.path.lastIndexOf('/') + 1)
      const childRel = rel ? `${rel}/${name}` : name
      if (entry.type === 'directory') {
        dirs.push(childRel)
        await visit(entry.path, childRel)
      } else {
        files.push({ rel: childRel, size: entry.size })
      }
    }
  }
  await visit(dir, '')
  return { files, dirs }
}
