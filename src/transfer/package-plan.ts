import { posix } from 'node:path'
import { PublishError } from '../errors.js'
import { encodePath, manifestFormat, readManifest, type Manifest } from '../packages/index.js'
import { forEachLimited } from './job.js'

/** The manifest extensions recognised when none are configured (APUBI_MANIFEST_EXTENSIONS). */
export const DEFAULT_MANIFEST_EXTENSIONS: readonly string[] = ['m3u8', 'mpd']

// A manifest is text of a few MiB at most; a larger file with a manifest's extension is media.
const MAX_MANIFEST_BYTES = 16 << 20
// Manifests read at once: a folder of many packages need not wait on one round trip per manifest.
export const PARALLEL_READS = 4

/**
 * References are resolved as URLs below this made-up origin, the published root at its top: a
 * reference leading elsewhere (another origin, or above the root) is outside the package.
 */
const ROOT = 'http://package.invalid/'

/** A file of a multi-file publish, relative to the published root. */
export interface PackageItem {
  readonly rel: string
  readonly size: number
  /** Bytes already read (a manifest, while listing it): published from memory, never read again. */
  readonly body?: Buffer
}

/** A manifest of the package, read, with the files it references inside the published root. */
export interface PlannedManifest {
  readonly rel: string
  readonly manifest: Manifest
  /** Paths relative to the root, each once, in the manifest's order; `report`s left out of `dependsOn`. */
  readonly references: readonly string[]
  /** The manifests among `references` that must be in place first. */
  readonly dependsOn: readonly string[]
}

/**
 * The order a multi-file publish makes its files visible in: `tiers[0]` holds every file that is
 * no manifest; each later tier holds the manifests whose references are all in earlier tiers, so
 * media playlists and MPDs come before the multivariant playlist naming them, which comes last.
 */
export interface PackagePlan<T extends PackageItem> {
  readonly tiers: ReadonlyArray<readonly T[]>
  readonly manifests: ReadonlyMap<string, PlannedManifest>
}

/** Whether `rel` has one of the manifest `extensions` (compared without case). */
export function hasManifestExtension(rel: string, extensions: readonly string[]): boolean {
  const dot = rel.lastIndexOf('.')
  return dot >= 0 && extensions.includes(rel.slice(dot + 1).toLowerCase())
}

/**
 * Reads the manifests among `items` (those with a manifest extension whose content is an HLS
 * playlist or an MPD; `read` fetches the bytes of one not read yet) and orders the publish. The
 * tiers hold `items` with the bytes read, so each manifest is read once.
 */
export async function planPackage<T extends PackageItem>(items: readonly T[], extensions: readonly string[], read: (item: T) => Promise<Buffer>, signal: AbortSignal): Promise<PackagePlan<T>> {
  const byRel = new Map(items.map((item) => [item.rel, item] as const))
  const candidates = items.filter((item) => hasManifestExtension(item.rel, extensions) && item.size <= MAX_MANIFEST_BYTES)
  const bodies = new Map<string, Buffer>()
  await forEachLimited(candidates, PARALLEL_READS, signal, async (item) => void bodies.set(item.rel, item.body ?? (await read(item))))
  const manifests = new Map<string, PlannedManifest>()
  for (const item of candidates) {
    const body = bodies.get(item.rel)!
    const text = body.toString('utf8')
    if (!manifestFormat(text)) continue
    byRel.set(item.rel, item.body ? item : { ...item, body })
    manifests.set(item.rel, plannedManifest(item.rel, text))
  }
  const levels = manifestLevels(manifests)
  const tiers: T[][] = [[]]
  for (const item of byRel.values()) {
    const level = levels.get(item.rel) ?? 0
    while (tiers.length <= level) tiers.push([])
    tiers[level]!.push(item)
  }
  return { tiers: tiers.filter((tier, i) => i === 0 || tier.length > 0), manifests }
}

/**
 * @throws PublishError ERR_PACKAGE_INCOMPLETE when a manifest references a file inside the root that
 *   is not in the plan: that package could only be published broken.
 */
export function assertComplete(plan: PackagePlan<PackageItem>): void {
  const rels = new Set(plan.tiers.flatMap((tier) => tier.map((item) => item.rel)))
  for (const planned of plan.manifests.values()) {
    const missing = planned.references.find((rel) => !rels.has(rel))
    if (missing !== undefined) throw new PublishError('ERR_PACKAGE_INCOMPLETE', `${planned.rel} references ${missing}, which is not in the source`)
  }
}

/**
 * Reads one manifest found at `rel` below the published root. One that cannot be read as its format
 * (a live MPD, say) is still a manifest, published last, its references unknown.
 */
export function plannedManifest(rel: string, text: string): PlannedManifest {
  const url = new URL(encodePath(rel), ROOT)
  let manifest: Manifest
  try {
    manifest = readManifest(text, url)
  } catch {
    return { rel, manifest: { format: manifestFormat(text) ?? 'hls', master: false, references: [], renditions: 0 }, references: [], dependsOn: [] }
  }
  const references = new Set<string>()
  const dependsOn = new Set<string>()
  for (const ref of manifest.references) {
    const inside = insideRel(ref.url)
    if (inside === undefined || inside === rel) continue
    references.add(inside)
    if (ref.playlist && !ref.report) dependsOn.add(inside)
  }
  return { rel, manifest, references: [...references], dependsOn: [...dependsOn] }
}

/** The path below the root a resolved reference names; undefined outside it. */
function insideRel(url: URL): string | undefined {
  if (url.origin !== new URL(ROOT).origin || url.pathname.length <= 1) return undefined
  try {
    const rel = decodeURIComponent(url.pathname.slice(1))
    return rel.split('/').includes('..') ? undefined : posix.normalize(rel)
  } catch {
    return undefined
  }
}

/**
 * 1 for a manifest that references no other manifest of the package, else one more than the
 * highest of those it references. A cycle (a broken package) is cut where it closes.
 */
function manifestLevels(manifests: ReadonlyMap<string, PlannedManifest>): Map<string, number> {
  const levels = new Map<string, number>()
  const visiting = new Set<string>()
  const level = (rel: string): number => {
    const known = levels.get(rel)
    if (known !== undefined) return known
    if (visiting.has(rel)) return 0
    visiting.add(rel)
    const deps = manifests.get(rel)!.dependsOn.filter((d) => manifests.has(d))
    const value = 1 + Math.max(0, ...deps.map(level))
    visiting.delete(rel)
    levels.set(rel, value)
    return value
  }
  for (const rel of manifests.keys()) level(rel)
  return levels
}
