import { readMpd } from './dash.js'
import { readHlsPlaylist } from './hls.js'
import type { PackageReference } from './reference.js'

export type ManifestFormat = 'hls' | 'dash'

/** One manifest or playlist, read: what it references and what it says of the package. */
export interface Manifest {
  readonly format: ManifestFormat
  /** An HLS multivariant playlist; an MPD is never one (it names segments itself). */
  readonly master: boolean
  readonly references: PackageReference[]
  /** HLS media playlists count 1, an MPD its Representations, a master 0. */
  readonly renditions: number
  /** Seconds of media, where the manifest says. */
  readonly durationSeconds?: number
}

// An MPD may open with an XML declaration and comments before its root element.
const MPD_START = /^\uFEFF?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*<(?:[A-Za-z_][\w.-]*:)?MPD[\s>/]/

/** The format of a manifest, told by its content; undefined: not an HLS playlist nor an MPD. */
export function manifestFormat(text: string): ManifestFormat | undefined {
  if (/^\uFEFF?#EXTM3U[ \t]*\r?(\n|$)/.test(text)) return 'hls'
  if (MPD_START.test(text.slice(0, 64 * 1024))) return 'dash'
  return undefined
}

/**
 * Reads a manifest of either format, its references resolved against `url`.
 * @throws Error when the text is neither, or cannot be read as the format it claims.
 */
export function readManifest(text: string, url: URL): Manifest {
  const format = manifestFormat(text)
  if (format === 'hls') {
    const playlist = readHlsPlaylist(text, url)
    return { format, master: playlist.master, references: playlist.references, renditions: playlist.master ? 0 : 1, durationSeconds: playlist.master ? undefined : playlist.durationSeconds }
  }
  if (format === 'dash') {
    const mpd = readMpd(text, url)
    return { format, master: false, references: mpd.references, renditions: mpd.representations, durationSeconds: mpd.durationSeconds }
  }
  throw new Error('neither an HLS playlist (#EXTM3U) nor a DASH MPD')
}
