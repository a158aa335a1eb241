import { posix } from 'node:path'
import type { Backend } from '../backends/index.js'
import { isPublishError, PublishError } from '../errors.js'
import { forEachLimited } from './job.js'
import { PARALLEL_READS, plannedManifest, type PlannedManifest } from './package-plan.js'

/** What the read-back of a published package found, recorded on its task. */
export interface PackageSummary {
  /** Manifests and playlists read back from the destination. */
  readonly manifests: number
  /** HLS media playlists plus DASH Representations. */
  readonly renditions: number
  /** Distinct files the manifests reference inside the package, each found with its published size. */
  readonly referencedFiles: number
  /** The longest presentation the manifests describe, seconds; absent where none says. */
  readonly durationSeconds?: number
}

/**
 * Checks that every file `manifests` reference is at `root` on `to` with the size in `sizes` (one
 * listing per folder referenced, not a request per file).
 * @throws PublishError ERR_PACKAGE_INCOMPLETE naming the first manifest and reference that fail.
 */
export async function checkReferences(to: Backend, root: string, manifests: readonly PlannedManifest[], sizes: ReadonlyMap<string, number>, signal: AbortSignal): Promise<void> {
  const listings = new Map<string, Promise<Map<string, number>>>()
  const listed = (dir: string): Promise<Map<string, number>> => {
    let listing = listings.get(dir)
    if (!listing) {
      listing = sizesIn(to, dir === '.' ? root : posix.join(root, dir), signal)
      listings.set(dir, listing)
    }
    return listing
  }
  for (const { rel, references } of manifests) {
    for (const ref of references) {
      const found = (await listed(posix.dirname(ref))).get(posix.basename(ref))
      const expected = sizes.get(ref)
      if (found === undefined) throw new PublishError('ERR_PACKAGE_INCOMPLETE', `${rel} references ${ref}, which is missing at the destination`)
      if (expected !== undefined && found !== expected) {
        throw new PublishError('ERR_PACKAGE_INCOMPLETE', `${rel} references ${ref}, which has ${found} bytes at the destination, ${expected} published`)
      }
    }
  }
}

/**
 * Reads each manifest `rels` back from `root` on `to`, as players will, and checks what it references.
 * @throws PublishError ERR_PACKAGE_INCOMPLETE naming the first reference missing or of another size.
 */
export async function verifyPackage(to: Backend, root: string, rels: readonly string[], sizes: ReadonlyMap<string, number>, signal: AbortSignal): Promise<PackageSummary> {
  const manifests: PlannedManifest[] = new Array(rels.length)
  await forEachLimited([...rels.keys()], PARALLEL_READS, signal, async (i) => {
    manifests[i] = plannedManifest(rels[i]!, (await readAll(to, posix.join(root, rels[i]!), signal)).toString('utf8'))
  })
  await checkReferences(to, root, manifests, sizes, signal)
  const durations = manifests.map((m) => m.manifest.durationSeconds).filter((d): d is number => d !== undefined && d > 0)
  return {
    manifests: manifests.length,
    renditions: manifests.reduce((sum, m) => sum + m.manifest.renditions, 0),
    referencedFiles: new Set(manifests.flatMap((m) => m.references)).size,
    ...(durations.length > 0 && { durationSeconds: Math.round(Math.max(...durations) * 1000) / 1000 }),
  }
}

/** The whole file at `path` in memory (manifests only: small). */
export async function readAll(backend: Pick<Backend, 'read'>, path: string, signal: AbortSignal): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of await backend.read(path, signal)) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

/** Name → size of the files in `dir`; empty when it does not exist. */
async function sizesIn(to: Backend, dir: string, signal: AbortSignal): Promise<Map<string, number>> {
  try {
    const entries = await to.list(dir, signal)
    return new Map(entries.filter((e) => e.type === 'file').map((e) => [posix.basename(e.path), e.size]))
  } catch (e) {
    if (isPublishError(e, 'ERR_NOT_FOUND')) return new Map()
    throw e
  }
}
