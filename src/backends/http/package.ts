import { PublishError } from '../../errors.js'
import { mpdReferences } from './dash.js'
import { isAbsolute, type PackageReference } from './reference.js'

/**
 * Enumerates a streaming package (HLS `.m3u8` or DASH `.mpd`) from its manifest, since HTTP has no
 * directory listing: the manifest, every playlist it leads to, every segment, init segment and key.
 *
 * Which references are copied, which are left alone, and which stop the publish:
 * - under the manifest's directory (relative, or absolute on the same origin): copied, keeping its
 *   path relative to that directory, so the copied manifest finds it at the destination;
 * - written as an absolute URL (`https://cdn/…`, `//cdn/…`) outside that directory: skipped, with
 *   the reason kept in `skipped`. The copied manifest still names that URL, so the package still plays;
 * - a key (EXT-X-KEY, EXT-X-SESSION-KEY) outside the directory, or any non-HTTP URI (`skd://`,
 *   `data:`): skipped likewise; keys are often served apart from the media on purpose;
 * - any other relative reference leading out of the directory (`../x.ts`, `/other/x.ts`): refused
 *   with ERR_POLICY_DENIED. Copying it would either escape the destination directory or publish a
 *   package whose manifest points at files that are not there.
 * Query strings and fragments of references are dropped: backend paths carry none.
 */
export interface PackageListing {
  readonly files: PackageFile[]
  readonly skipped: Array<{ readonly uri: string; readonly reason: string }>
}

export interface PackageFile {
  /** Path below the manifest's directory, decoded, POSIX separators. */
  readonly rel: string
  /** Backend path (decoded URL path without the leading '/'). */
  readonly path: string
}

/** Reads one manifest or playlist of the package by backend path. */
export type ReadText = (path: string) => Promise<string>

// A package is counted in files, not bytes; beyond this a manifest is more likely broken or hostile.
const MAX_PACKAGE_FILES = 200_000

/** Whether `path` names a manifest this module can enumerate. */
export function isPackageManifest(path: string): boolean {
  return /\.(m3u8|mpd)$/i.test(path)
}

/**
 * Every file of the package whose manifest is at backend path `manifestPath` on `origin`
 * (`https://host:port`), the manifest first, each file once.
 * @throws PublishError ERR_POLICY_DENIED for a relative reference leading out of the package,
 *   ERR_REQUEST_INVALID for an unreadable manifest, and what `readText` throws.
 */
export async function enumeratePackage(origin: string, manifestPath: string, readText: ReadText): Promise<PackageListing> {
  const manifest = new URL(`${origin}/${encodePath(manifestPath)}`)
  const dir = manifest.pathname.slice(0, manifest.pathname.lastIndexOf('/') + 1)
  // Compared decoded: `café/` and `caf%C3%A9/` name the same directory.
  const dirPath = decodePath(dir.slice(1), manifest)
  const files = new Map<string, PackageFile>()
  const skipped: Array<{ uri: string; reason: string }> = []

  /** The file for `ref`, or undefined when it is skipped. */
  const include = (ref: PackageReference): PackageFile | undefined => {
    const { url } = ref
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      skipped.push({ uri: url.href, reason: 'not an HTTP URL' })
      return undefined
    }
    const path = decodePath(url.pathname.slice(1), manifest)
    // URL resolution removed `..` segments, but an encoded '/' (`..%2F..%2Fx`) decodes into new ones.
    if (path.split('/').includes('..')) {
      throw new PublishError('ERR_POLICY_DENIED', `${manifest.href}: ${url.pathname} climbs out of the package directory`)
    }
    const inside = url.origin === manifest.origin && path.startsWith(dirPath) && path.length > dirPath.length
    if (!inside) {
      if (ref.absolute || ref.key) {
        skipped.push({ uri: url.href, reason: `outside the package directory ${manifest.origin}${dir}` })
        return undefined
      }
      throw new PublishError('ERR_POLICY_DENIED', `${manifest.href}: ${url.pathname} is outside the package directory ${dir}`)
    }
    const known = files.get(path)
    if (known) return known
    if (files.size >= MAX_PACKAGE_FILES) throw new PublishError('ERR_REQUEST_INVALID', `${manifest.href}: more than ${MAX_PACKAGE_FILES} files`)
    const file = { rel: path.slice(dirPath.length), path }
    files.set(path, file)
    return file
  }

  include({ url: manifest, absolute: false })
  const text = await readText(manifestPath)
  if (/\.mpd$/i.test(manifestPath)) {
    for (const ref of parsed(manifest, () => mpdReferences(text, manifest))) include(ref)
  } else {
    // Breadth first over playlists; `include` hands back a known file, `read` stops revisiting it.
    const read = new Set([manifestPath])
    const queue: Array<{ url: URL; text: string }> = [{ url: manifest, text }]
    for (let playlist = queue.shift(); playlist; playlist = queue.shift()) {
      const { url, text: body } = playlist
      for (const ref of parsed(url, () => hlsReferences(body, url))) {
        const file = include(ref)
        if (!file || !ref.playlist || read.has(file.path)) continue
        read.add(file.path)
        queue.push({ url: ref.url, text: await readText(file.path) })
      }
    }
  }
  return { files: [...files.values()], skipped }
}

/** Runs a manifest parser, turning what it throws into ERR_REQUEST_INVALID naming the manifest. */
function parsed(where: URL, parse: () => PackageReference[]): PackageReference[] {
  try {
    return parse()
  } catch (e) {
    if (e instanceof PublishError) throw e
    throw new PublishError('ERR_REQUEST_INVALID', `${where.href}: ${(e as Error).message}`, { cause: e })
  }
}

/** HLS tags whose URI attribute names a playlist, or another file of the package. */
const uriTags: Readonly<Record<string, 'playlist' | 'file' | 'key'>> = {
  'EXT-X-MEDIA': 'playlist',
  'EXT-X-I-FRAME-STREAM-INF': 'playlist',
  'EXT-X-IMAGE-STREAM-INF': 'playlist',
  'EXT-X-MAP': 'file',
  'EXT-X-PART': 'file',
  'EXT-X-SESSION-DATA': 'file',
  'EXT-X-KEY': 'key',
  'EXT-X-SESSION-KEY': 'key',
}

/**
 * The references of one HLS playlist (RFC 8216), master or media, in order: URI lines (a playlist
 * after EXT-X-STREAM-INF, else a segment) and the URI attributes of the tags above. Byte-range
 * segments name the same file many times; the caller keeps each file once.
 * @throws Error when the text is not an HLS playlist.
 */
export function hlsReferences(text: string, playlist: URL): PackageReference[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim())
  if (lines[0]?.replace(/^\uFEFF/, '') !== '#EXTM3U') throw new Error('not an HLS playlist (no #EXTM3U first line)')
  const refs: PackageReference[] = []
  const add = (uri: string, kind: 'playlist' | 'file' | 'key'): void => {
    refs.push({ url: new URL(uri, playlist), absolute: isAbsolute(uri), playlist: kind === 'playlist', key: kind === 'key' })
  }
  let variantNext = false
  for (const line of lines) {
    if (line === '') continue
    if (!line.startsWith('#')) {
      add(line, variantNext ? 'playlist' : 'file')
      variantNext = false
      continue
    }
    const colon = line.indexOf(':')
    const tag = colon < 0 ? line.slice(1) : line.slice(1, colon)
    if (tag === 'EXT-X-STREAM-INF') variantNext = true
    const kind = uriTags[tag]
    const uri = kind && colon > 0 ? attributeList(line.slice(colon + 1)).URI : undefined
    if (kind && uri) add(uri, kind)
  }
  return refs
}

/** `KEY=value,KEY="quoted, with commas"` as a record (RFC 8216 §4.2). */
function attributeList(text: string): Record<string, string> {
  const attrs: Record<string, string> = {}
  for (const [, key, value] of text.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
    attrs[key!] = value!.startsWith('"') ? value!.slice(1, -1) : value!
  }
  return attrs
}

/** A backend path as a URL path: each segment percent-encoded, '/' kept. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

function decodePath(path: string, manifest: URL): string {
  try {
    return decodeURIComponent(path)
  } catch (e) {
    throw new PublishError('ERR_REQUEST_INVALID', `${manifest.href}: malformed percent-encoding in ${path}`, { cause: e })
  }
}
