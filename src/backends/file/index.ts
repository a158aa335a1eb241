import { constants, createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readlink, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PublishError, type Code } from '../../errors.js'
import type { Backend, BackendFactory, Entry, LocationGuard, WriteOptions } from '../types.js'

/**
 * Local or mounted file systems (`file:///abs/path`). The location policy confines every path to the
 * file roots as each operation runs, and once more on the file a read or write opened: a symlink
 * swapped in after the task started cannot lead out.
 */
export const createFileBackend: BackendFactory = (_, context) => new FileBackend(context.guard)

const errnoCodes: Record<string, Code> = {
  ENOENT: 'ERR_NOT_FOUND',
  ENOTDIR: 'ERR_NOT_A_DIRECTORY',
  EACCES: 'ERR_PERMISSION',
  EPERM: 'ERR_PERMISSION',
  EROFS: 'ERR_PERMISSION',
  ENOSPC: 'ERR_TRANSFER',
  EIO: 'ERR_TRANSFER',
}

function translate(e: unknown, action: string, path: string): PublishError {
  if (e instanceof PublishError) return e
  const errno = (e as NodeJS.ErrnoException).code ?? ''
  if (errno === 'ABORT_ERR') return new PublishError('ERR_SHUTDOWN', `${action} ${path}: aborted`, { cause: e })
  const code = errnoCodes[errno] ?? 'ERR_INTERNAL'
  return new PublishError(code, `${action} file://${path}: ${errno || (e as Error).message}`, { cause: e })
}

class FileBackend implements Backend {
  readonly scheme = 'file' as const
  readonly features = { atomicRename: true, writable: true, append: true }

  constructor(private readonly guard: LocationGuard | undefined) {}

  async stat(path: string): Promise<Entry> {
    try {
      this.guard?.checkFile(path)
      const s = await stat(path)
      return { path, type: s.isDirectory() ? 'directory' : 'file', size: s.isDirectory() ? 0 : s.size }
    } catch (e) {
      throw translate(e, 'stat', path)
    }
  }

  async list(dir: string): Promise<Entry[]> {
    try {
      this.guard?.checkFile(dir)
      const names = await readdir(dir, { withFileTypes: true })
      return await Promise.all(names.map((d) => this.stat(join(dir, d.name))))
    } catch (e) {
      throw translate(e, 'list', dir)
    }
  }

  async read(path: string, signal: AbortSignal, offset = 0) {
    // Opening first turns "missing" into ERR_NOT_FOUND here rather than as a stream error later.
    const entry = await this.stat(path)
    if (entry.type !== 'file') throw new PublishError('ERR_NOT_FOUND', `read file://${path}: not a file`)
    let handle: FileHandle
    try {
      handle = await this.openConfined(path, constants.O_RDONLY)
    } catch (e) {
      throw translate(e, 'read', path)
    }
    return createReadStream('', { fd: handle, signal, start: offset, highWaterMark: 1 << 20 })
  }

  async write(path: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<void> {
    let opened = false
    try {
      this.guard?.checkFile(path)
      await mkdir(dirname(path), { recursive: true })
      // Not truncated on opening: a file that turns out to be outside the roots is left as it was.
      const handle = await this.openConfined(path, constants.O_WRONLY | constants.O_CREAT | (options.append ? constants.O_APPEND : 0))
      opened = true
      try {
        if (!options.append) await handle.truncate(0)
      } catch (e) {
        await handle.close()
        throw e
      }
      await pipeline(body, createWriteStream('', { fd: handle, highWaterMark: 1 << 20 }), { signal })
    } catch (e) {
      // An appended file keeps what it had: resuming it later is the point. A path the policy
      // refused is not ours to remove: it may lead to someone else's file.
      if (opened && !options.append) await unlink(path).catch(() => {})
      throw translate(e, 'write', path)
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      this.guard?.checkFile(from)
      this.guard?.checkFile(to)
      await rename(from, to)
    } catch (e) {
      throw translate(e, 'rename', from)
    }
  }

  async remove(path: string): Promise<void> {
    try {
      const entry = await this.stat(path)
      await (entry.type === 'directory' ? rmdir(path) : unlink(path))
    } catch (e) {
      throw translate(e, 'remove', path)
    }
  }

  async mkdir(path: string): Promise<void> {
    try {
      this.guard?.checkFile(path)
      await mkdir(path, { recursive: true })
    } catch (e) {
      throw translate(e, 'mkdir', path)
    }
  }

  async close(): Promise<void> {}

  /**
   * Opens `path`, which the policy allowed a moment ago, and checks the file actually opened: in
   * between, a directory or link on the way may have been swapped for a symlink that leads out.
   */
  private async openConfined(path: string, flags: number): Promise<FileHandle> {
    const handle = await open(path, flags, 0o666)
    try {
      this.guard?.checkFile(await openedPath(handle, path))
      return handle
    } catch (e) {
      await handle.close()
      throw e
    }
  }
}

/** The path of the file behind `handle`, as Linux names it in /proc; elsewhere the path it was opened by. */
async function openedPath(handle: FileHandle, path: string): Promise<string> {
  return readlink(`/proc/self/fd/${handle.fd}`).catch(() => path)
}
