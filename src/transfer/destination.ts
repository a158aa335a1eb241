import { fileURLToPath } from 'node:url'
import { PublishError } from '../errors.js'
import { clip } from '../observability/index.js'

const absoluteUrl = /^[a-z][a-z0-9+.-]*:/i

/** Whether a DestinationAsset is a path under the CDN base rather than a URL of its own. */
export function isRelativeDestination(destination: string): boolean {
  return !absoluteUrl.test(destination)
}

/**
 * A DestinationAsset as an absolute URL. One rule for both forms: a destination names path segments,
 * each the file or folder name as written. A relative one is taken under `cdnBase` and never decoded,
 * so `a b/c.ts` is the file `file://<cdn>/a%20b/c.ts` names; what a WFM most likely wrote by mistake
 * (a leading `/`, a backslash, a control character, a `%XX` escape that one reader would decode and
 * another not) is refused rather than guessed at. A `file://` URL is percent-decoded, and its decoded
 * names may hold no backslash or control character either.
 * @throws PublishError ERR_REQUEST_INVALID for those mistakes, ERR_POLICY_DENIED for `..` in a
 *   relative path.
 */
export function resolveDestination(destination: string, cdnBase: string): string {
  if (!isRelativeDestination(destination)) {
    if (/^file:/i.test(destination)) checkNames(decodedFilePath(destination), destination)
    return destination
  }
  const refuse = (why: string) => new PublishError('ERR_REQUEST_INVALID', `Relative destination ${quoted(destination)} ${why}`)
  if (destination.startsWith('/')) throw refuse("starts with '/': name a path under the CDN base (movies/a.ts), or give an absolute URL")
  if (/%[0-9a-f]{2}/i.test(destination)) throw refuse('holds a percent-escape: a relative destination is not decoded; write the character itself')
  checkNames(destination, destination)
  const segments = destination.split('/').filter((s) => s !== '' && s !== '.')
  if (segments.includes('..')) {
    throw new PublishError('ERR_POLICY_DENIED', `Relative destination ${quoted(destination)} must not contain '..'`)
  }
  const trailing = destination.endsWith('/') && segments.length > 0 ? '/' : ''
  return cdnBase + segments.map(encodeURIComponent).join('/') + trailing
}

/** Names that no WFM means: a Windows separator (`a\..\x` would become one odd file name), control characters. */
function checkNames(path: string, destination: string): void {
  const why = path.includes('\\') ? 'a backslash: separate folders with /' : /[\u0000-\u001f\u007f]/.test(path) ? 'a control character' : undefined
  if (why) throw new PublishError('ERR_REQUEST_INVALID', `Destination ${quoted(destination)} holds ${why}`)
}

/** The decoded path of a file URL; one that does not decode is left to parseLocation to refuse. */
function decodedFilePath(url: string): string {
  try {
    return fileURLToPath(url)
  } catch {
    return ''
  }
}

/** A destination as a message repeats it: quoted, so that odd characters show, and clipped. */
function quoted(destination: string): string {
  return JSON.stringify(clip(destination))
}
