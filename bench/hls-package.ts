// Test data for the transport bench: an HLS-like package (a master playlist, variant playlists and
// their segments, sizes drawn from a seeded generator), what a published copy of it must hold, and the
// check of a copy on local disk.
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** What a copy must hold: each file's size by its path relative to the copied folder (POSIX separators). */
export type Manifest = ReadonlyMap<string, number>

const KiB = 1 << 10
const MiB = 1 << 20
const VARIANTS = [
  { name: 'v0', bandwidth: 800_000, resolution: '640x360' },
  { name: 'v1', bandwidth: 1_400_000, resolution: '960x540' },
  { name: 'v2', bandwidth: 2_800_000, resolution: '1280x720' },
  { name: 'v3', bandwidth: 5_000_000, resolution: '1920x1080' },
] as const
/** The playlists: a master and one per variant. */
const PLAYLISTS = 1 + VARIANTS.length
export const MIN_PACKAGE_FILES = PLAYLISTS + VARIANTS.length

/** mulberry32: a small, seeded, good-enough generator; the same seed gives the same package on every machine. */
function generator(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * Writes `files` files into `dir`, one after the other (the bench holds one 17 MiB pool, never the
 * package): `master.m3u8`, `v0/index.m3u8` … `v3/index.m3u8`, and the segments `v<n>/seg_<i>.ts`
 * spread over the variants (~500 each for 2,000 files), each 100–600 KiB of incompressible bytes.
 * @returns the manifest, paths relative to `dir`
 */
export async function writeHlsPackage(dir: string, files: number, seed = 0x415055): Promise<Manifest> {
  if (!(Number.isInteger(files) && files >= MIN_PACKAGE_FILES)) throw new Error(`an HLS package needs at least ${MIN_PACKAGE_FILES} files, not ${files}`)
  const random = generator(seed)
  // Incompressible and seeded: each segment is a view at its own offset of this pool.
  const pool = Buffer.allocUnsafe(17 * MiB)
  for (let i = 0; i + 4 <= pool.length; i += 4) pool.writeUInt32LE(Math.floor(random() * 4_294_967_296), i)
  const manifest = new Map<string, number>()
  const put = async (rel: string, bytes: Buffer | string) => {
    await writeFile(join(dir, rel), bytes)
    manifest.set(rel, Buffer.byteLength(bytes))
  }

  const segments = files - PLAYLISTS
  for (const [v, variant] of VARIANTS.entries()) {
    await mkdir(join(dir, variant.name), { recursive: true })
    const count = Math.floor(segments / VARIANTS.length) + (v < segments % VARIANTS.length ? 1 : 0)
    let playlist = '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n'
    for (let i = 0; i < count; i++) {
      const name = `seg_${String(i).padStart(5, '0')}.ts`
      const size = 100 * KiB + Math.floor(random() * 500 * KiB)
      const offset = Math.floor(random() * (pool.length - size))
      await put(`${variant.name}/${name}`, pool.subarray(offset, offset + size))
      playlist += `#EXTINF:4.000,\n${name}\n`
    }
    await put(`${variant.name}/index.m3u8`, `${playlist}#EXT-X-ENDLIST\n`)
  }
  const master = VARIANTS.map((v) => `#EXT-X-STREAM-INF:BANDWIDTH=${v.bandwidth},RESOLUTION=${v.resolution},CODECS="avc1.64001f,mp4a.40.2"\n${v.name}/index.m3u8\n`)
  await put('master.m3u8', `#EXTM3U\n#EXT-X-VERSION:3\n${master.join('')}`)
  return manifest
}

/** Every file below `dir` (dot files included: a temporary file left behind is an error) with its size. */
export async function listSizes(dir: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  const visit = async (path: string, rel: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name
      if (entry.isDirectory()) await visit(join(path, entry.name), childRel)
      else sizes.set(childRel, (await stat(join(path, entry.name))).size)
    }
  }
  await visit(dir, '')
  return sizes
}

/** @throws unless `dir` holds exactly the manifest's files, each of its size */
export async function verifyCopy(dir: string, expected: Manifest): Promise<void> {
  const found = await listSizes(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return new Map<string, number>()
    throw e
  })
  const problems: string[] = []
  for (const [rel, size] of expected) {
    const got = found.get(rel)
    if (got === undefined) problems.push(`${rel} missing`)
    else if (got !== size) problems.push(`${rel}: ${got} bytes, ${size} expected`)
  }
  for (const rel of found.keys()) if (!expected.has(rel)) problems.push(`${rel} not expected`)
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ')
    throw new Error(`${dir}: ${found.size} files, ${expected.size} expected: ${shown}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`)
  }
}

/** The manifest of the same files below a folder `prefix`. */
export function under(prefix: string, manifest: Manifest): Manifest {
  return new Map([...manifest].map(([rel, size]) => [`${prefix}/${rel}`, size]))
}
