import { createHash, randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import { createReadStream, createWriteStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { once } from 'node:events'

/** Writes `bytes` of random data without holding them in memory. */
export async function writeLargeFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path)
  for (let written = 0; written < bytes; ) {
    const chunk = randomBytes(Math.min(1 << 20, bytes - written))
    written += chunk.length
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await finished(out)
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Every file below `dir`, relative paths, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort()
}

/** Polls `check` until it returns a value, up to `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** One row of the server's database, read directly (the test looks behind the API): `sql` takes one value. */
export function queryRow<T>(dataDir: string, sql: string, value: string): T {
  const db = new Database(join(dataDir, 'apubi.sqlite'), { readonly: true })
  try {
    return db.prepare(sql).get(value) as T
  } finally {
    db.close()
  }
}

/** What the server recorded of the one file a task published. */
export function publishedFile(dataDir: string, taskId: string): { size: number; sha256: string; resumed_from: number } {
  return queryRow(dataDir, 'SELECT size, sha256, resumed_from FROM task_file WHERE task_id = ?', taskId)
}
