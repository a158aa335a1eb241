import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PublishError, type Code } from '../errors.js'
import type { Backend, BackendFactory, Entry, WriteOptions } from './types.js'

/** Local or mounted file systems (`file:///abs/path`). Location policy is checked before we get here. */
export const createFileBackend: BackendFactory = () => new FileBackend()

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

  async stat(path: string): Promise<Entry> {
    try {
      const s = await stat(path)
      return { path, type: s.isDirectory() ? 'directory' : 'file', size: s.isDirectory() ? 0 : s.size }
    } catch (e) {
      throw translate(e, 'stat', path)
    }
  }

  async list(dir: string): Promise<Entry[]> {
    try {
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
    return createReadStream(path, { signal, start: offset, highWaterMark: 1 << 20 })
  }

  async write(path: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<void> {
    try {
      await mkdir(dirname(path), { recursive: true })
      await pipeline(body, createWriteStream(path, { flags: options.append ? 'a' : 'w', highWaterMark: 1 << 20 }), { signal })
    } catch (e) {
      // An appended file keeps what it had: resuming it later is the point.
      if (!options.append) await unlink(path).catch(() => {})
      throw translate(e, 'write', path)
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
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
      await mkdir(path, { recursive: true })
    } catch (e) {
      throw translate(e, 'mkdir', path)
    }
  }

  async close(): Promise<void> {}
}
