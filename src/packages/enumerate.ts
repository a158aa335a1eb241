import { PublishError } from '../errors.js'
import { mpdReferences } from './dash.js'
import { hlsReferences } from './hls.js'
import type { PackageReference } from './reference.js'

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
 * A reference's own query string is kept with its file (a signed segment URL needs it); fragments
 * are dropped. Each manifest and playlist is read once: its bytes come with its file, to be published
 * as they were listed.
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
  /** The reference's own query string (`?sig=…`), sent when the file is read; absent: it has none. */
  readonly query?: string
  /** A manifest's or playlist's bytes, as read for the listing. */
  readonly body?: Buffer
}

/** Reads one manifest or playlist of the package by backend path, with the reference's own query if it has one. */
export type ReadBytes = (path: string, query: string | undefined) => Promise<Buffer>

// A package is counted in files, not bytes; beyond this a manifest is more likely broken or hostile.
const MAX_PACKAGE_FILES = 200_000

/**
 * Every file of the package whose manifest is at backend path `manifestPath` on `origin`
 * (`https://host:port`), the manifest first, each file once.
 * @throws PublishError ERR_POLICY_DENIED for a relative reference leading out of the package,
 *   ERR_REQUEST_INVALID for an unreadable manifest, and what `readBytes` throws.
 */
export async function enumeratePackage(origin: string, manifestPath: string, readBytes: ReadBytes): Promise<PackageListing> {
  const manifest = new URL(`${origin}/${encodePath(manifestPath)}`)
  const dir = manifest.pathname.slice(0, manifest.pathname.lastIndexOf('/') + 1)
  // Compared decoded: `café/` and `caf%C3%A9/` name the same directory.
  const dirPath = decodePath(dir.slice(1), manifest)
  const files = new Map<string, { rel: string; path: string; query?: string; body?: Buffer }>()
  const skipped: Array<{ uri: string; reason: string }> = []

  /** The file for `ref`, or undefined when it is skipped. */
  const include = (ref: PackageReference): { rel: string; path: string; query?: string; body?: Buffer } | undefined => {
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
    const file = { rel: path.slice(dirPath.length), path, ...(url.search && { query: url.search }) }
    files.set(path, file)
    return file
  }

  const top = include({ url: manifest, absolute: false })!
  top.body = await readBytes(manifestPath, undefined)
  const text = top.body.toString('utf8')
  if (/\.mpd$/i.test(manifestPath)) {
    for (const ref of parsed(manifest, () => mpdReferences(text, manifest))) include(ref)
  } else {
    // Breadth first over playlists; `include` hands back a known file, its body says it was read.
    const queue: Array<{ url: URL; text: string }> = [{ url: manifest, text }]
    for (let playlist = queue.shift(); playlist; playlist = queue.shift()) {
      const { url, text: body } = playlist
      for (const ref of parsed(url, () => hlsReferences(body, url))) {
        const file = include(ref)
        if (!file || !ref.playlist || file.body) continue
        file.body = await readBytes(file.path, file.query)
        queue.push({ url: ref.url, text: file.body.toString('utf8') })
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
