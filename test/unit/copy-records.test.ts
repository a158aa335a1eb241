import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { parseLocation, publish, type PublishedFile, type TransferOptions } from '../../src/transfer/index.js'

// A file's lane goes on to the next file while the hashing threads finish the last one; its record
// follows. A directory publish still ends only once every file is recorded, and a record that fails
// fails the publish and starts no more copies.
const work = mkdtempSync(join(tmpdir(), 'apubi-copy-records-'))
after(() => rmSync(work, { recursive: true, force: true }))

const options = (parallelFiles: number): TransferOptions => ({
  backends: { hosts: createHostLimiter(8), timeoutMs: 10_000, ssh: { knownHostsFile: '/nonexistent', hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} } },
  credentials: (endpoint) => endpoint,
  checksums: ['md5', 'sha256'],
  parallelFiles,
  connectionsPerHost: 8,
})

/** A folder of `count` random files of `size` bytes. */
function source(count: number, size: number): { dir: string; files: Map<string, Buffer> } {
  const dir = join(work, `src-${randomUUID()}`)
  mkdirSync(dir)
  const files = new Map(Array.from({ length: count }, (_, i) => [`f${String(i).padStart(3, '0')}.bin`, randomBytes(size)] as const))
  for (const [rel, bytes] of files) writeFileSync(join(dir, rel), bytes)
  return { dir, files }
}

function publishDir(from: string, to: string, parallelFiles: number, onFile: (file: PublishedFile) => void): Promise<unknown> {
  const job = { taskId: randomUUID(), signal: new AbortController().signal, onProgress: () => {}, onFile }
  return publish(parseLocation(`${pathToFileURL(from).href}/`), parseLocation(`${pathToFileURL(to).href}/`), job, options(parallelFiles))
}

const hex = (algorithm: string, bytes: Buffer): string => createHash(algorithm).update(bytes).digest('hex')

it('ends only once every file is recorded, each with the digests of its bytes', async () => {
  // 1 MiB each: hashing one outlasts renaming it, so the last records come after the last copy.
  const { dir, files } = source(24, 1 << 20)
  const recorded = new Map<string, PublishedFile>()
  await publishDir(dir, join(work, `dst-${randomUUID()}`), 4, (file) => void recorded.set(file.rel, file))
  assert.equal(recorded.size, files.size)
  for (const [rel, bytes] of files) {
    assert.equal(recorded.get(rel)?.md5, hex('md5', bytes), rel)
    assert.equal(recorded.get(rel)?.sha256, hex('sha256', bytes), rel)
  }
})

it('fails with the error of a record that fails, and starts no more copies', async () => {
  // Many small files, one at a time: the first record fails long before the last file's turn.
  const { dir, files } = source(200, 64 << 10)
  const target = join(work, `dst-${randomUUID()}`)
  const refused = new Error('the task store refused the record')
  await assert.rejects(
    publishDir(dir, target, 1, () => {
      throw refused
    }),
    (e) => e === refused,
  )
  const landed = readdirSync(target)
  assert.ok(landed.length >= 1 && landed.length < files.size, `${landed.length} of ${files.size} files copied`)
  assert.ok(!landed.some((name) => name.endsWith('.part')), 'no temporary file left')
})
