import { lstatSync, readlinkSync, realpathSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'

// Where file:// may read and write: inside its roots, as the file system resolves a path now.

/**
 * A test of whether a path is inside one of `fileRoots`, compared after resolving `..` and the
 * symlinks of its deepest existing ancestor, so that a link inside a root cannot lead out of it.
 * The roots themselves are resolved once, here.
 */
export function createFileRoots(fileRoots: readonly string[]): (path: string) => boolean {
  const roots = fileRoots.map((root) => realpathOrSelf(resolve(root)))
  return (path) => {
    const real = realpathOfDeepestAncestor(path)
    return roots.some((root) => {
      const rel = relative(root, real)
      return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep))
    })
  }
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync.native(path)
  } catch {
    return path
  }
}

/** Linux gives up after 40 symlinks in one path (ELOOP); so do we. */
const MAX_SYMLINK_HOPS = 40

// Checked for each file a copy writes (the temporary name, the file opened, the rename), so cheaply:
// libc's realpath rather than Node's JavaScript walk (half the time), and a path that does not exist,
// as a temporary name first does not, is seen by one lstat rather than a whole walk that fails.
function realpathOfDeepestAncestor(path: string): string {
  let current = resolve(path)
  const rest: string[] = []
  for (let hops = 0; ; ) {
    try {
      if (exists(current)) return join(realpathSync.native(current), ...rest)
    } catch {
      // realpath fails on a dangling symlink, yet a write through it lands at its target: follow it.
      const target = readlinkOrUndefined(current)
      if (target !== undefined && hops++ < MAX_SYMLINK_HOPS) {
        current = resolve(dirname(current), target)
        continue
      }
    }
    const parent = dirname(current)
    if (parent === current) return resolve(path)
    rest.unshift(basename(current))
    current = parent
  }
}

/** Whether something, a dangling symlink included, is at `path`; throws where a file or a refusal stands on the way. */
function exists(path: string): boolean {
  return lstatSync(path, { throwIfNoEntry: false }) !== undefined
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path)
  } catch {
    return undefined
  }
}
