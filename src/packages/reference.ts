// What the HLS and DASH readers hand to their callers: one reference each.

/** A reference found in a manifest, resolved against the manifest's URL. */
export interface PackageReference {
  readonly url: URL
  /** Written as an absolute URL (a scheme or `//host`) somewhere along its resolution. */
  readonly absolute: boolean
  /** An HLS playlist, to be read for further references. */
  readonly playlist?: boolean
  /**
   * An HLS EXT-X-RENDITION-REPORT: a sibling playlist, read and published like the others, but no
   * dependency of this one (two renditions report each other), so it does not order publishing.
   */
  readonly report?: boolean
  /** A key: skipped, not refused, when outside the package. */
  readonly key?: boolean
}

/** Whether a reference is written as an absolute URL (with a scheme, or scheme-relative). */
export function isAbsolute(uri: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith('//')
}
