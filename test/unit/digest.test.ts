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

it('a copy that moves on without waiting for digests holds a bounded number of rings, and every digest is right', async () => {
  // As a lane does: the next file starts once this one's bytes are through, its digests come later.
  // A ring made per file where the hashing fell behind took 2,000 files to 4 GB of address space.
  const files = Array.from({ length: 300 }, (_, i) => randomBytes(100_000 + i))
  const before = process.memoryUsage().arrayBuffers
  let most = 0
  const digests: Array<Promise<unknown>> = []
  for (const data of files) {
    const digest = new DigestStream(['md5', 'sha256'])
    await pipeline(Readable.from([data]), digest, new Writable({ write: (_c, _e, next) => next() }))
    digests.push(digest.digests)
    most = Math.max(most, process.memoryUsage().arrayBuffers - before)
  }
  assert.deepEqual(await Promise.all(digests), files.map(expected))
  assert.ok(most <= 40 * 2 ** 20, `shared rings grew to ${(most / 2 ** 20).toFixed(0)} MiB`)
})

it('copies of one file to two origins, teed from one read, all end even with more at once than rings kept', async () => {
  // A mirror publish: each file read once and teed to one digest stream per origin, at the pace of
  // the slowest. A stream that waited for another's ring could wait for its own sibling forever.
  const files = Array.from({ length: 40 }, (_, i) => randomBytes(300_000 + i))
  const copies = files.map(async (data) => {
    const streams = [new DigestStream(['md5', 'sha256']), new DigestStream(['md5', 'sha256'])]
    const source = Readable.from([data.subarray(0, 100_000), data.subarray(100_000)])
    const done = streams.map((digest) => pipeline(digest, new Writable({ write: (_c, _e, next) => setImmediate(next) })))
    source.on('data', (chunk: Buffer) => {
      if (!streams.map((s) => s.write(chunk)).every(Boolean)) {
        source.pause()
        Promise.all(streams.map((s) => (s.writableNeedDrain ? new Promise((r) => s.once('drain', r)) : undefined))).then(() => source.resume())
      }
    })
    source.on('end', () => streams.forEach((s) => s.end()))
    await Promise.all(done)
    return Promise.all(streams.map((s) => s.digests))
  })
  const results = await Promise.race([Promise.all(copies), new Promise<undefined>((resolve) => setTimeout(resolve, 20_000, undefined))])
  assert.ok(results, 'the teed copies did not all end')
  assert.deepEqual(results, files.map((data) => [expected(data), expected(data)]))
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
