import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { randomBytes, randomUUID } from 'node:crypto'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { temporaryName } from '../../src/transfer/copy-file.js'
import { parseLocation, publish, type PublishedFile, type TransferOptions } from '../../src/transfer/index.js'

// A directory published again after an interrupted attempt: the temporary file that attempt left is
// continued, not written again; in a destination that did not exist, nothing is looked for.
const work = mkdtempSync(join(tmpdir(), 'apubi-copy-resume-'))
after(() => rmSync(work, { recursive: true, force: true }))

const options: TransferOptions = {
  backends: { hosts: createHostLimiter(8), timeoutMs: 10_000, ssh: { knownHostsFile: '/nonexistent', hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} } },
  credentials: (endpoint) => endpoint,
  checksums: ['sha256'],
  parallelFiles: 4,
  connectionsPerHost: 8,
}

function source(): { dir: string; files: Map<string, Buffer> } {
  const dir = join(work, `src-${randomUUID()}`)
  const files = new Map([
    ['a.bin', randomBytes(200_000)],
    ['sub/b.bin', randomBytes(900_000)],
  ])
  for (const [rel, bytes] of files) {
    mkdirSync(join(dir, rel, '..'), { recursive: true })
    writeFileSync(join(dir, rel), bytes)
  }
  return { dir, files }
}

async function publishDir(from: string, to: string, taskId: string): Promise<PublishedFile[]> {
  const published: PublishedFile[] = []
  const job = { taskId, signal: new AbortController().signal, onProgress: () => {}, onFile: (file: PublishedFile) => void published.push(file) }
  await publish(parseLocation(`${pathToFileURL(from).href}/`), parseLocation(`${pathToFileURL(to).href}/`), job, options)
  return published.sort((x, y) => x.rel.localeCompare(y.rel))
}

it('continues the temporary file an earlier attempt left in an existing destination, bytes identical, nothing left over', async () => {
  const { dir, files } = source()
  const target = join(work, `dst-${randomUUID()}`)
  const taskId = randomUUID()
  mkdirSync(join(target, 'sub'), { recursive: true })
  const b = files.get('sub/b.bin')!
  writeFileSync(join(target, temporaryName('sub/b.bin', taskId)), b.subarray(0, 300_000))

  const published = await publishDir(dir, target, taskId)

  assert.deepEqual(published.map((f) => [f.rel, f.resumedFrom]), [['a.bin', 0], ['sub/b.bin', 300_000]])
  for (const [rel, bytes] of files) assert.ok(readFileSync(join(target, rel)).equals(bytes), rel)
  assert.deepEqual(readdirSync(join(target, 'sub')), ['b.bin'])
})

it('writes every file whole into a destination that did not exist', async () => {
  const { dir, files } = source()
  const target = join(work, `dst-${randomUUID()}`)
  const published = await publishDir(dir, target, randomUUID())
  assert.deepEqual(published.map((f) => [f.rel, f.size, f.resumedFrom]), [['a.bin', 200_000, 0], ['sub/b.bin', 900_000, 0]])
  for (const [rel, bytes] of files) assert.ok(readFileSync(join(target, rel)).equals(bytes), rel)
})
