import { isAbsolute, type PackageReference } from './reference.js'

/** HLS tags whose URI attribute names a playlist, another file of the package, or a key. */
const uriTags: Readonly<Record<string, 'playlist' | 'report' | 'file' | 'key'>> = {
  'EXT-X-MEDIA': 'playlist',
  'EXT-X-I-FRAME-STREAM-INF': 'playlist',
  'EXT-X-IMAGE-STREAM-INF': 'playlist',
  'EXT-X-RENDITION-REPORT': 'report',
  'EXT-X-MAP': 'file',
  'EXT-X-PART': 'file',
  'EXT-X-PRELOAD-HINT': 'file',
  'EXT-X-SESSION-DATA': 'file',
  'EXT-X-KEY': 'key',
  'EXT-X-SESSION-KEY': 'key',
}

/** What one HLS playlist says of itself besides its references. */
export interface HlsPlaylist {
  readonly references: PackageReference[]
  /** A multivariant (master) playlist: it names variant or rendition playlists, no segments. */
  readonly master: boolean
  /** The sum of its EXTINF durations, seconds; 0 for a master. */
  readonly durationSeconds: number
}

/**
 * The references of one HLS playlist (RFC 8216), master or media, in order: URI lines (a playlist
 * after EXT-X-STREAM-INF, else a segment) and the URI attributes of the tags above. Byte-range
 * segments name the same file many times; the caller keeps each file once.
 * @throws Error when the text is not an HLS playlist.
 */
export function readHlsPlaylist(text: string, playlist: URL): HlsPlaylist {
  const lines = text.split(/\r?\n/).map((l) => l.trim())
  if (lines[0]?.replace(/^\uFEFF/, '') !== '#EXTM3U') throw new Error('not an HLS playlist (no #EXTM3U first line)')
  const references: PackageReference[] = []
  const add = (uri: string, kind: 'playlist' | 'report' | 'file' | 'key'): void => {
    references.push({ url: new URL(uri, playlist), absolute: isAbsolute(uri), playlist: kind === 'playlist' || kind === 'report', report: kind === 'report', key: kind === 'key' })
  }
  let variantNext = false
  let master = false
  let durationSeconds = 0
  for (const line of lines) {
    if (line === '') continue
    if (!line.startsWith('#')) {
      add(line, variantNext ? 'playlist' : 'file')
      variantNext = false
      continue
    }
    const colon = line.indexOf(':')
    const tag = colon < 0 ? line.slice(1) : line.slice(1, colon)
    if (tag === 'EXT-X-STREAM-INF') variantNext = master = true
    if (tag === 'EXT-X-I-FRAME-STREAM-INF' || tag === 'EXT-X-MEDIA') master = true
    if (tag === 'EXTINF') durationSeconds += Number.parseFloat(line.slice(colon + 1)) || 0
    const kind = uriTags[tag]
    const uri = kind && colon > 0 ? attributeList(line.slice(colon + 1)).URI : undefined
    if (kind && uri) add(uri, kind)
  }
  return { references, master, durationSeconds }
}

/** The references of one HLS playlist; see `readHlsPlaylist`. @throws Error when not an HLS playlist. */
export function hlsReferences(text: string, playlist: URL): PackageReference[] {
  return readHlsPlaylist(text, playlist).references
}

/** `KEY=value,KEY="quoted, with commas"` as a record (RFC 8216 §4.2). */
function attributeList(text: string): Record<string, string> {
  const attrs: Record<string, string> = {}
  for (const [, key, value] of text.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
    attrs[key!] = value!.startsWith('"') ? value!.slice(1, -1) : value!
  }
  return attrs
}
