import { posix } from 'node:path'
import { Readable } from 'node:stream'
import type { Backend } from '../backends/index.js'
import { isPublishError, PublishError } from '../errors.js'
import { copyFile, type Landed } from './copy-file.js'
import { forEachLimited, walk, withBackend, withSource, type Job, type TransferOptions } from './job.js'
import { Lanes, sameHost } from './lanes.js'
import type { Location } from './locate.js'
import { folderIntoManifest, listPackage, packageTarget } from './package-source.js'
import { assertComplete, DEFAULT_MANIFEST_EXTENSIONS, hasManifestExtension, planPackage, type PackageItem, type PackagePlan } from './package-plan.js'
import { checkReferences, readAll, verifyPackage, type PackageSummary } from './package-verify.js'
import { ProgressCounter } from './progress.js'

/** What a publish did, for the task's record. */
export interface Published {
  /** Whether more than one file was published (a directory, or a manifest's package). */
  readonly directory: boolean
  /** The base name of the source. */
  readonly name: string
  /** What the read-back of the published manifests found; absent where none was published. */
  readonly package?: PackageSummary
}

/** A file of a multi-file publish: where to read it, unless its bytes are already in memory. */
interface SourceItem extends PackageItem {
  readonly sourcePath: string
}

/**
 * Publishes `source` (a file, or a directory's contents) to `destination`, one `copyFile` per file
 * (see there for temporary names, checksums and resume). Existing destination files are replaced.
 * A manifest source (HLS or DASH, by extension) brings its package. Wherever several files are
 * published, the manifests among them go last, each only once all it references is in place, and
 * are read back at the end (see `publishInOrder`).
 */
export async function publish(source: Location, destination: Location, job: Job, options: TransferOptions): Promise<Published> {
  const extensions = options.manifestExtensions ?? DEFAULT_MANIFEST_EXTENSIONS
  const lanes = new Lanes(options, sameHost(source, destination))
  return withSource(source.endpoint, options, (from) =>
    withBackend(destination.endpoint, options, async (to) => {
      const name = posix.basename(source.path)
      if (!source.isDirectory && hasManifestExtension(source.path, extensions)) {
        const { dir, manifestName } = packageTarget(source, destination, extensions)
        const entries = await listPackage(from, source.path, job.signal)
        // The manifest itself lies at the top of its package; published under the name the destination gives.
        const items = await withSizes(from, entries.map((e) => (e.rel === name ? { ...e, rel: manifestName } : e)), options, job.signal)
        if (manifestName !== name && items.filter((i) => i.rel === manifestName).length > 1) {
          throw new PublishError('ERR_REQUEST_INVALID', `the destination names the manifest ${manifestName}, which is also another file of the package: give a folder ending in '/' or another name`)
        }
        const summary = await publishInOrder(from, items, to, dir, [], job, options, lanes)
        return { directory: true, name, ...(summary && { package: summary }) }
      }
      const root = await from.stat(source.path, job.signal)
      if (source.isDirectory && root.type !== 'directory') {
        throw new PublishError('ERR_NOT_A_DIRECTORY', `${source.path} is a file, but the source URL ends with '/'`)
      }
      if (root.type === 'file') {
        const target = destination.isDirectory ? posix.join(destination.path, name) : destination.path
        const progress = new ProgressCounter(job, root.size, 1)
        const { recorded } = await copyFile({ from, sourcePath: source.path, size: root.size, to, targetPath: target, rel: name }, job, progress, options.checksums)
        await recorded
        return { directory: false, name }
      }
      if (!destination.isDirectory && hasManifestExtension(destination.path, extensions)) throw folderIntoManifest(destination)
      const { files, dirs } = await walk(from, source.path, job.signal)
      const items = files.map(({ rel, size }) => ({ rel, size, sourcePath: posix.join(source.path, rel) }))
      const summary = await publishInOrder(from, items, to, destination.path, dirs, job, options, lanes)
      return { directory: true, name, ...(summary && { package: summary }) }
    }),
  )
}

/** Each file holds a connection on both sides: half the host cap keeps one task from starving itself. */
function lanesFor(options: TransferOptions): number {
  return Math.max(1, Math.min(options.parallelFiles, Math.floor(options.connectionsPerHost / 2)))
}

/** The package's files with their sizes: a manifest's from its bytes, the others' from a stat (HEAD), before any copy so that progress knows the total. */
async function withSizes(from: Backend, entries: ReadonlyArray<{ rel: string; path: string; body?: Buffer }>, options: TransferOptions, signal: AbortSignal): Promise<SourceItem[]> {
  const items: SourceItem[] = new Array(entries.length)
  await forEachLimited([...entries.keys()], lanesFor(options), signal, async (i) => {
    const { rel, path, body } = entries[i]!
    items[i] = { rel, sourcePath: path, size: body ? body.length : (await from.stat(path, signal)).size, ...(body && { body }) }
  })
  return items
}

/**
 * Publishes `items` into `targetDir` so that no manifest is ever visible before what it references:
 * every file that is no manifest first, then the manifests tier by tier (media playlists and MPDs,
 * the multivariant playlist last), each tier only once the files its manifests reference are found
 * at the destination with their sizes. At the end every manifest is read back from the destination
 * and checked the same way. When any of it fails, the manifests this attempt added are taken away
 * again (master first), so a failed package shows no new manifest; those it replaced stay replaced.
 * A later attempt skips the files already in place (`job.completed`). `dirs` (relative) are made
 * too, empty ones included, where the destination has directories. Files go over `lanes`, which
 * grow while round trips rather than CPU limit the copy.
 * @returns the verification's summary; undefined when no manifest was among the files.
 */
async function publishInOrder(from: Backend, items: readonly SourceItem[], to: Backend, targetDir: string, dirs: readonly string[], job: Job, options: TransferOptions, lanes: Lanes): Promise<PackageSummary | undefined> {
  const plan: PackagePlan<SourceItem> = await planPackage(items, options.manifestExtensions ?? DEFAULT_MANIFEST_EXTENSIONS, (item) => readAll(from, item.sourcePath, job.signal), job.signal)
  assertComplete(plan)
  const [files = [], ...manifestTiers] = plan.tiers
  const progress = new ProgressCounter(job, items.reduce((sum, f) => sum + f.size, 0), items.length)
  const targetIsNew = await isAbsent(to, targetDir, job.signal)
  if (!to.features.implicitDirectories) {
    await to.mkdir(targetDir, job.signal)
    for (const dir of dirs) await to.mkdir(posix.join(targetDir, dir), job.signal)
  }
  const copy = (item: SourceItem): Promise<Landed> => {
    // A manifest is published from the bytes read to plan the order: what was listed is what lands.
    const source = item.body ? inMemory(item.body) : from
    return copyFile({ from: source, sourcePath: item.sourcePath, size: item.size, to, targetPath: posix.join(targetDir, item.rel), rel: item.rel, targetIsNew }, job, progress, options.checksums)
  }
  await copyEach(files, lanes, job, copy)
  if (manifestTiers.length === 0) return undefined
  const sizes = new Map(items.map((i) => [i.rel, i.size]))
  // Read back master first, so the first reference found missing is named from the top.
  const manifests = manifestTiers.flat().reverse().map((m) => m.rel)
  const existed = await presentAt(to, targetDir, manifests, options, job.signal)
  try {
    for (const tier of manifestTiers) {
      await checkReferences(to, targetDir, tier.map((i) => plan.manifests.get(i.rel)!), sizes, job.signal)
      await copyEach(tier, lanes, job, copy)
    }
    return await verifyPackage(to, targetDir, manifests, sizes, job.signal)
  } catch (e) {
    const added = manifestTiers.flat().reverse().filter((m) => !existed.has(m.rel))
    for (const { rel } of added) await to.remove(posix.join(targetDir, rel), AbortSignal.timeout(10_000)).catch(() => {})
    throw e
  }
}

/** A source holding one file's bytes, for `copyFile`. */
function inMemory(body: Buffer): Pick<Backend, 'read'> {
  return { read: async (_path, _signal, offset = 0) => Readable.from([body.subarray(offset)]) }
}

/** The `rels` already at `dir` on `to`. */
async function presentAt(to: Backend, dir: string, rels: readonly string[], options: TransferOptions, signal: AbortSignal): Promise<Set<string>> {
  const present = new Set<string>()
  await forEachLimited(rels, lanesFor(options), signal, async (rel) => {
    if (!(await isAbsent(to, posix.join(dir, rel), signal))) present.add(rel)
  })
  return present
}

/**
 * Copies `files` over the lanes, each lane going on to its next file once one has landed; returns
 * once every landed file is recorded too. The first failure, of a copy or of a record, starts no
 * more copies and is thrown.
 */
async function copyEach<T>(files: readonly T[], lanes: Lanes, job: Job, copy: (file: T) => Promise<Landed>): Promise<void> {
  let failure: { error: unknown } | undefined
  const records: Array<Promise<void>> = []
  try {
    const work = async (file: T): Promise<void> => {
      if (failure) throw failure.error
      const { recorded } = await copy(file)
      records.push(recorded.catch((e: unknown) => void (failure ??= { error: e })))
    }
    await forEachLimited(files, lanes.initial, job.signal, work, (running) => lanes.grow(running))
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
