import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { it } from 'node:test'
import { DigestStream } from '../../src/transfer/digest.js'

const expected = (data: Buffer) => ({
  md5: createHash('md5').update(data).digest('hex'),
  sha256: createHash('sha256').update(data).digest('hex'),
})

it('hashes MD5 and SHA-256 of what flows through, passing the bytes on unchanged', async () => {
  const data = randomBytes(5 * 1024 * 1024 + 3)
  const out: Buffer[] = []
  const digest = new DigestStream(['md5', 'sha256'])
  await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), digest, new Writable({ write: (c, _, next) => (out.push(c), next()) }))
  assert.deepEqual(Buffer.concat(out), data)
  assert.equal(digest.bytes, data.length)
  assert.deepEqual(await digest.digests, expected(data))
})

it('keeps several streams apart, and hashes an empty one', async () => {
  const inputs = [Buffer.alloc(0), randomBytes(10), randomBytes(70_000)]
  const results = await Promise.all(
    inputs.map(async (data) => {
      const digest = new DigestStream(['md5', 'sha256'])
      await pipeline(Readable.from(data.length ? [data] : []), digest, new Writable({ write: (_c, _e, next) => next() }))
      return digest.digests
    }),
  )
  assert.deepEqual(results, inputs.map(expected))
})

it('holds back a fast producer instead of queueing the whole file for the hashing thread', async () => {
  // 64 MiB through a sink that never reads: what the digest accepts stays near its in-flight bound.
  const digest = new DigestStream(['md5', 'sha256'])
  let produced = 0
  const source = new Readable({
    read() {
      produced += 1 << 20
      this.push(produced > 64 << 20 ? null : Buffer.alloc(1 << 20))
    },
  })
  source.pipe(digest)
  await new Promise((r) => setTimeout(r, 300))
  assert.ok(produced < 24 << 20, `produced ${produced >> 20} MiB while nothing was consumed`)
  digest.destroy()
  source.destroy()
})

it('hashing many small files one after another keeps memory flat (the shared rings are reused)', async () => {
  // Fresh rings per file were freed only when the hashing thread's GC ran: 1,000 files of 350 KB
  // took the process from 77 to 343 MB (bench run, issue 3).
  const chunk = randomBytes(350_000)
  const before = process.memoryUsage().rss
  for (let i = 0; i < 1_000; i++) {
    const digest = new DigestStream(['md5', 'sha256'])
    await pipeline(Readable.from([chunk]), digest, new Writable({ write: (_c, _e, next) => next() }))
    await digest.digests
  }
  const grownMb = (process.memoryUsage().rss - before) / 2 ** 20
  assert.ok(grownMb < 100, `RSS grew by ${grownMb.toFixed(0)} MB`)
})

it('absorbs a prefix sent earlier without passing it on: the digests are those of the whole', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 11)
  const cut = 1_234_567
  const out: Buffer[] = []
  const digest = new DigestStream(['md5', 'sha256'])
  await digest.absorb(Readable.from([data.subarray(0, 1000), data.subarray(1000, cut)]))
  await pipeline(Readable.from([data.subarray(cut)]), digest, new Writable({ write: (c, _, next) => (out.push(c), next()) }))
  assert.deepEqual(Buffer.concat(out), data.subarray(cut), 'only what came after the prefix flows on')
  assert.equal(digest.bytes, data.length)
  assert.deepEqual(await digest.digests, expected(data))
})

it('hashes in threads of lower priority (nice) than the one that moves the bytes, one per algorithm', { skip: process.platform !== 'linux' && 'a nice value of its own per thread is Linux' }, async () => {
  const digest = new DigestStream(['md5', 'sha256'])
  const data = randomBytes(1000)
  await pipeline(Readable.from([data]), digest, new Writable({ write: (_c, _e, next) => next() }))
  assert.deepEqual(await digest.digests, expected(data))
  // /proc/<pid>/stat: the 19th field, the 17th after the command name's closing parenthesis.
  const niceOf = (stat: string): number => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
  const own = niceOf(readFileSync('/proc/thread-self/stat', 'utf8'))
  const threads = readdirSync('/proc/self/task').map((tid) => niceOf(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')))
  assert.equal(threads.filter((nice) => nice === Math.min(19, own + 5)).length, 2, `nice values of the threads: ${threads.join(', ')}`)
})
