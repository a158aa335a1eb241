import { posix } from 'node:path'
import type { Backend, PackageEntry } from '../backends/index.js'
import { isPublishError, PublishError } from '../errors.js'
import { enumeratePackage } from '../packages/index.js'
import { withBackend, type TransferOptions } from './job.js'
import type { Location } from './locate.js'
import { DEFAULT_MANIFEST_EXTENSIONS, hasManifestExtension } from './package-plan.js'
import { readAll } from './package-verify.js'

// Storage with listings still lists a package from its manifest: under this made-up origin, a
// reference written as an absolute URL is outside the package and left alone, as from HTTP.
const LOCAL_ORIGIN = 'http://package.invalid'

/**
 * Every file of the package whose manifest is at `manifestPath`, with the bytes of each manifest and
 * playlist read to list it: from the backend's own `listPackage` (HTTP), else by reading the manifests
 * through `read`, the same rules applying (see packages/enumerate.ts).
 */
export async function listPackage(from: Backend, manifestPath: string, signal: AbortSignal): Promise<PackageEntry[]> {
  if (from.listPackage) return from.listPackage(manifestPath, signal)
  const lead = manifestPath.startsWith('/') ? '/' : ''
  try {
    const { files } = await enumeratePackage(LOCAL_ORIGIN, manifestPath.slice(lead.length), (path) => readAll(from, lead + path, signal))
    return files.map(({ rel, path, body }) => ({ rel, path: lead + path, ...(body && { body }) }))
  } catch (e) {
    // Messages name paths as the storage knows them, not under the made-up origin.
    if (e instanceof PublishError && e.message.includes(LOCAL_ORIGIN)) throw new PublishError(e.code, e.message.split(LOCAL_ORIGIN).join(''), { cause: e })
    throw e
  }
}

/** A folder source given a destination that names a manifest file: refused, whatever it holds. */
export function folderIntoManifest(destination: Location): PublishError {
  return new PublishError('ERR_REQUEST_INVALID', `the source is a folder, but the destination ${posix.basename(destination.path)} names a manifest file: end the destination with '/' to publish the folder into it`)
}

/**
 * Where a manifest source's package goes: into a destination folder (ending in '/') under the
 * manifest's own name, or, for a destination naming a manifest file (`x/master.m3u8`), into that
 * file's folder with the manifest under the name given. The package's other files keep their paths.
 * @throws PublishError ERR_REQUEST_INVALID for a destination naming a file that is no manifest: the
 *   package would be published as one unplayable file.
 */
export function packageTarget(source: Location, destination: Location, extensions: readonly string[]): { dir: string; manifestName: string } {
  if (destination.isDirectory) return { dir: destination.path, manifestName: posix.basename(source.path) }
  return { dir: posix.dirname(destination.path), manifestName: manifestFileName(source, destination, extensions) }
}

/** The manifest's name in a file-style destination. @throws PublishError ERR_REQUEST_INVALID */
function manifestFileName(source: Location, destination: Location, extensions: readonly string[]): string {
  const name = posix.basename(destination.path)
  if (hasManifestExtension(name, extensions) && posix.extname(name).toLowerCase() === posix.extname(source.path).toLowerCase()) return name
  throw new PublishError(
    'ERR_REQUEST_INVALID',
    `the source ${posix.basename(source.path)} is a streaming package, and the destination ${name} names neither a folder nor a manifest of the same kind: end the destination with '/' (the package goes into that folder) or name the manifest (…/${posix.basename(source.path)})`,
  )
}

const EMPTY_PLAYLIST = Buffer.from('#EXTM3U\n')

// A check made while the WFM waits for its answer: beyond this, the task's own work tells.
const REQUEST_CHECK_MS = 5_000

/**
 * What can be told of a LoadAsset before it is queued: a destination naming a manifest file for a
 * folder source, or naming no manifest for a manifest source (ERR_REQUEST_INVALID), and, for a manifest
 * an HTTP origin serves, a reference of it leading out of the package (ERR_POLICY_DENIED), read within
 * a few seconds. Only that manifest is read now: the playlists it names are the task's to read (once),
 * as is anything else (an origin slow or down, a missing file), which the task reports.
 * @throws PublishError ERR_REQUEST_INVALID, ERR_POLICY_DENIED
 */
export async function checkPackageRequest(source: Location, destination: Location, options: TransferOptions): Promise<void> {
  const extensions = options.manifestExtensions ?? DEFAULT_MANIFEST_EXTENSIONS
  if (source.isDirectory) {
    if (!destination.isDirectory && hasManifestExtension(destination.path, extensions)) throw folderIntoManifest(destination)
    return
  }
  if (!hasManifestExtension(source.path, extensions)) return
  packageTarget(source, destination, extensions)
  if (source.endpoint.scheme !== 'http' && source.endpoint.scheme !== 'https') return
  const signal = AbortSignal.timeout(REQUEST_CHECK_MS)
  try {
    await withBackend(source.endpoint, options, async (from) => {
      const manifest = await readAll(from, source.path, signal)
      // The playlists it names read as empty ones: their own references are checked by the task.
      await enumeratePackage(new URL(source.url).origin, source.path, async (path) => (path === source.path ? manifest : EMPTY_PLAYLIST))
    })
  } catch (e) {
    if (isPublishError(e, 'ERR_POLICY_DENIED')) throw e
  }
}
