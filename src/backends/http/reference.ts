// What the HLS and DASH readers hand to the package listing: one reference each.

/** A reference found in a manifest, resolved against the manifest's URL. */
export interface PackageReference {
  readonly url: URL
  /** Written as an absolute URL (a scheme or `//host`) somewhere along its resolution. */
  readonly absolute: boolean
  /** An HLS playlist, to be read for further references. */
  readonly playlist?: boolean
  /** A key: skipped, not refused, when outside the package. */
  readonly key?: boolean
}

/** Whether a reference is written as an absolute URL (with a scheme, or scheme-relative). */
export function isAbsolute(uri: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith('//')
}
