/** An HLS or DASH manifest: what a republished package's viewers fetch again first. */
const MANIFEST = /\.(m3u8|mpd)$/i

/** A URL as bases match it: scheme, host and port, path; no credentials, query or fragment. */
export function comparable(url: string): string {
  const u = new URL(url)
  return `${u.protocol}//${u.host.toLowerCase()}${u.pathname}`
}

/** The part of `target` below `base` (percent-encoded, as in the URL), or undefined when it is not below. */
export function below(base: string, target: string): string | undefined {
  const from = comparable(base)
  const to = comparable(target)
  return to.startsWith(from) ? to.slice(from.length) : undefined
}

/** `rel` (decoded, `/`-separated) as a URL path, each segment encoded. */
function encoded(rel: string): string {
  return rel.split('/').map(encodeURIComponent).join('/')
}

/**
 * The public URLs a load makes stale: of the files it published (paths relative to the published
 * root), the manifests when there are any (a package: its segments have new names, its manifests do
 * not), else every file. `targetRel` is the target below the base: a directory ends with `/`.
 */
export function afterLoad(publicBase: string, targetRel: string, files: readonly string[], targetIsDirectory: boolean): string[] {
  if (!targetIsDirectory) return [publicBase + targetRel]
  const manifests = files.filter((rel) => MANIFEST.test(rel))
  return (manifests.length > 0 ? manifests : files).map((rel) => publicBase + targetRel + encoded(rel))
}

/**
 * The public URLs and prefixes a purge makes stale: a file's URL; for a directory, its prefix, and
 * for providers that need every URL named, the URL of each file it held (listed before the purge).
 */
export function afterPurge(publicBase: string, targetRel: string, targetIsDirectory: boolean, files: readonly string[]): { urls: string[]; prefixes: string[] } {
  if (!targetIsDirectory) return { urls: [publicBase + targetRel], prefixes: [] }
  return { urls: files.map((rel) => publicBase + targetRel + encoded(rel)), prefixes: [publicBase + targetRel] }
}
