// The behaviour every backend owes the transfer code (the contract in src/backends/types.ts), run
// against real storage. Each backend's test file is one call of `backendConformance`.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once, setMaxListeners } from 'node:events'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, it, type TestContext } from 'node:test'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import type { Backend, BackendContext, HostLimiter } from '../../src/backends/types.js'
import { PublishError, type Code } from '../../src/errors.js'

export interface ConformanceTarget {
  readonly backend: Backend
  /** Backend path of an empty, writable directory the suite may fill. */
  readonly root: string
  /** Whether the backend draws connections from `context.hosts` (false for local storage). */
  readonly network: boolean
  /** A secret of the endpoint that no error message may contain. */
  readonly secret?: string
  /** For backends with credentials: one for the same storage with a wrong password, and that password. */
  readonly wrongPassword?: () => { backend: Backend; password: string }
  /**
   * For a read-only backend (`features.writable` false: HTTP), puts a file at a backend path by other
   * means. The tests that only need files to read then get them from here, the writing methods are
   * checked to be refused, and the tests of writing are skipped.
   */
  readonly seed?: (path: string, body: Readable) => Promise<void>
  /** Closes the backend and stops whatever setup started. */
  close(): Promise<void>
}

/** Builds the target with the context the suite controls; `{ skip }` says why it cannot run here. */
export type ConformanceSetup = (context: BackendContext) => Promise<ConformanceTarget | { skip: string }>

const MiB = 1 << 20
const HOST_LIMIT = 2
// Short, so that a reader can outwait it; still above pyftpdlib's 3 s delay before refusing a login.
const BACKEND_TIMEOUT_MS = 4_000
const CHUNK_BYTES = 256 * 1024
// A block of noise reused for generated content, each chunk stamped with its index so none repeat.
const NOISE = randomBytes(CHUNK_BYTES)
// Generous for 64 MiB on a slow runner, yet far below what a connection stuck waiting for a slot costs.
const TEST_TIMEOUT_MS = 30_000

/** Registers the conformance suite for one backend, set up once and shared by its tests in order. */
export function backendConformance(name: string, setup: ConformanceSetup): void {
  describe(`backend conformance: ${name}`, () => {
    const slots = countingLimiter(HOST_LIMIT)
    let target: ConformanceTarget | undefined
    let skipped = 'setup did not run'
    let tests = 0
    const never = new AbortController().signal
    // The parallel test has 20 operations listening on this one signal, as a task's copies share one.
    setMaxListeners(100, never)

    before(async () => {
      // Transport options are neutral here: a setup that needs its own (known hosts, S3 endpoint) spreads this.
      const result = await setup({
        hosts: slots.hosts,
        timeoutMs: BACKEND_TIMEOUT_MS,
        ssh: { knownHostsFile: '/nonexistent/known_hosts', hostKeyPolicy: 'strict' },
        s3: { region: 'us-east-1', buckets: {} },
      })
      if ('skip' in result) {
        skipped = result.skip
        console.warn(`\n*** SKIPPED backend conformance: ${name}: ${result.skip} ***\n`)
      } else {
        target = result
      }
    })
    after(() => target?.close())

    /**
     * A test that runs only when setup produced a target, in a fresh directory of its own. Unless it
     * says `writes: false` (it stores its files with `put`), a read-only backend skips it.
     */
    const test = (title: string, body: (t: ConformanceTarget, dir: string, tc: TestContext) => Promise<void>, { writes = true } = {}): void => {
      const folder = `t${++tests}-${title.replace(/[^a-z0-9]+/gi, '-').slice(0, 30)}`
      it(title, { timeout: TEST_TIMEOUT_MS }, async (tc) => {
        if (!target) return tc.skip(skipped)
        const readOnly = !target.backend.features.writable
        if (readOnly && writes) return tc.skip('read-only backend')
        const dir = `${target.root}/${folder}`
        if (!readOnly) await target.backend.mkdir(dir, never)
        await body(target, dir, tc)
      })
    }

    /** Stores a file for a test to read: through the backend, or for a read-only one through `seed`. */
    const put = async (t: ConformanceTarget, path: string, body: Readable): Promise<void> => {
      if (t.backend.features.writable) return void (await t.backend.write(path, body, never))
      assert.ok(t.seed, 'a read-only backend needs a seed function')
      return t.seed(path, body)
    }

    /** Asserts `promise` rejects with a PublishError of `code` whose message holds no secret. */
    const rejectsWith = async (promise: Promise<unknown>, code: Code, secret = target?.secret): Promise<void> => {
      await assert.rejects(promise, (e: unknown) => {
        assert.ok(e instanceof PublishError, `not a PublishError: ${String(e)}`)
        assert.equal(e.code, code, e.message)
        if (secret) assert.ok(!e.message.includes(secret), `secret in message: ${e.message}`)
        return true
      })
    }

    test('stat of a missing path is ERR_NOT_FOUND', async ({ backend }, dir) => {
      await rejectsWith(backend.stat(`${dir}/missing`, never), 'ERR_NOT_FOUND')
    }, { writes: false })

    for (const size of [0, 1, MiB, 64 * MiB]) {
      test(`write then read round-trips ${size} bytes`, async (t, dir) => {
        const path = `${dir}/data.bin`
        await put(t, path, generated(size))
        assert.deepEqual(await t.backend.stat(path, never), { path, type: 'file', size })
        assert.equal(await sha256(await t.backend.read(path, never)), await sha256(generated(size)))
      }, { writes: false })
    }

    test('a size the write reports is the size the storage then gives', async ({ backend }, dir) => {
      const path = `${dir}/sized.bin`
      const reported = await backend.write(path, generated(MiB + 7), never)
      const { size } = await backend.stat(path, never)
      assert.equal(size, MiB + 7)
      if (reported !== undefined) assert.equal(reported, size)
    })

    test('a read stream does not buffer ahead of its consumer', async (t, dir) => {
      const path = `${dir}/big.bin`
      await put(t, path, generated(32 * MiB))
      const stream = await t.backend.read(path, never)
      stream.pause()
      await sleep(500)
      assert.ok(stream.readableLength <= 4 * MiB, `${stream.readableLength} bytes buffered`)
      assert.equal(await sha256(stream), await sha256(generated(32 * MiB)))
    }, { writes: false })

    test('a reader pausing longer than the backend timeout still gets the whole file', async (t, dir) => {
      const path = `${dir}/file.bin`
      await put(t, path, generated(8 * MiB))
      const stream = await t.backend.read(path, never)
      await once(stream, 'readable')
      await sleep(BACKEND_TIMEOUT_MS + 1000)
      assert.equal(await sha256(stream), await sha256(generated(8 * MiB)))
    }, { writes: false })

    test('write into a new deep directory makes the parents', async ({ backend }, dir) => {
      const path = `${dir}/a/b/c/file.txt`
      await backend.write(path, content('deep'), never)
      assert.deepEqual(await backend.stat(`${dir}/a/b`, never), { path: `${dir}/a/b`, type: 'directory', size: 0 })
      assert.equal(await text(await backend.read(path, never)), 'deep')
    })

    test('list returns the direct children with type and size', async ({ backend }, dir) => {
      await backend.write(`${dir}/file.bin`, content('abc'), never)
      await backend.write(`${dir}/sub/inner.txt`, content('not listed'), never)
      const entries = (await backend.list(dir, never)).sort((a, b) => a.path.localeCompare(b.path))
      assert.deepEqual(entries, [
        { path: `${dir}/file.bin`, type: 'file', size: 3 },
        { path: `${dir}/sub`, type: 'directory', size: 0 },
      ])
    })

    test('list of a missing path is ERR_NOT_FOUND, of a file ERR_NOT_A_DIRECTORY', async ({ backend }, dir) => {
      await backend.write(`${dir}/file.txt`, content('x'), never)
      await rejectsWith(backend.list(`${dir}/missing`, never), 'ERR_NOT_FOUND')
      await rejectsWith(backend.list(`${dir}/file.txt`, never), 'ERR_NOT_A_DIRECTORY')
    })

    test('a body failing mid-way rejects write and leaves nothing at the path', async ({ backend }, dir) => {
      const path = `${dir}/partial.bin`
      await assert.rejects(backend.write(path, failingAfter(2 * CHUNK_BYTES), never), PublishError)
      await rejectsWith(backend.stat(path, never), 'ERR_NOT_FOUND')
    })

    test('an abort stops a write with ERR_SHUTDOWN and leaves nothing at the path', async ({ backend }, dir) => {
      const path = `${dir}/aborted.bin`
      const abort = new AbortController()
      setTimeout(() => abort.abort(), 300)
      await rejectsWith(backend.write(path, endless(), abort.signal), 'ERR_SHUTDOWN')
      await rejectsWith(backend.stat(path, never), 'ERR_NOT_FOUND')
    })

    test('rename replaces an existing target', async ({ backend }, dir) => {
      await backend.write(`${dir}/from.txt`, content('new'), never)
      await backend.write(`${dir}/to.txt`, content('old and longer'), never)
      await backend.rename(`${dir}/from.txt`, `${dir}/to.txt`, never)
      assert.equal(await text(await backend.read(`${dir}/to.txt`, never)), 'new')
      await rejectsWith(backend.stat(`${dir}/from.txt`, never), 'ERR_NOT_FOUND')
    })

    test('rename of a missing file is ERR_NOT_FOUND and leaves the target alone', async ({ backend }, dir) => {
      await backend.write(`${dir}/to.txt`, content('kept'), never)
      await rejectsWith(backend.rename(`${dir}/missing.txt`, `${dir}/to.txt`, never), 'ERR_NOT_FOUND')
      assert.equal(await text(await backend.read(`${dir}/to.txt`, never)), 'kept')
    })

    test('names with spaces, UTF-8, #, % and ? survive write, list and read', async (t, dir) => {
      const { backend } = t
      const parent = `${dir}/sub dir ü#%`
      const names = ['with space.txt', 'ünïcødé 名前.txt', 'hash#tag.txt', 'per%20cent%.txt', 'what?.txt']
      for (const name of names) await put(t, `${parent}/${name}`, content(name))
      if (backend.features.writable) {
        const listed = (await backend.list(parent, never)).map((e) => e.path).sort()
        assert.deepEqual(listed, names.map((n) => `${parent}/${n}`).sort())
      }
      for (const name of names) assert.equal(await text(await backend.read(`${parent}/${name}`, never)), name)
    }, { writes: false })

    test('remove deletes a file and an empty directory, and a missing path is ERR_NOT_FOUND', async ({ backend }, dir) => {
      await backend.write(`${dir}/file.txt`, content('x'), never)
      await backend.mkdir(`${dir}/empty`, never)
      await backend.remove(`${dir}/file.txt`, never)
      await backend.remove(`${dir}/empty`, never)
      assert.deepEqual(await backend.list(dir, never), [])
      await rejectsWith(backend.remove(`${dir}/file.txt`, never), 'ERR_NOT_FOUND')
    })

    test('mkdir makes the parents and accepts an existing directory', async ({ backend }, dir) => {
      await backend.mkdir(`${dir}/x/y/z`, never)
      await backend.mkdir(`${dir}/x/y/z`, never)
      await backend.mkdir(`${dir}/x`, never)
      assert.deepEqual(await backend.stat(`${dir}/x/y/z`, never), { path: `${dir}/x/y/z`, type: 'directory', size: 0 })
    })

    test('read of a missing file rejects read itself with ERR_NOT_FOUND', async ({ backend }, dir) => {
      await rejectsWith(backend.read(`${dir}/missing.bin`, never), 'ERR_NOT_FOUND')
    }, { writes: false })

    test('a wrong password is ERR_AUTH, and the message does not carry it', async ({ wrongPassword, root }, _dir, tc) => {
      if (!wrongPassword) return tc.skip('the backend takes no credentials')
      const { backend, password } = wrongPassword()
      try {
        await rejectsWith(backend.stat(root, never), 'ERR_AUTH', password)
      } finally {
        await backend.close()
      }
    }, { writes: false })

    test('a read stream destroyed mid-way frees its connection', async (t, dir) => {
      const { backend } = t
      const path = `${dir}/file.bin`
      await put(t, path, generated(8 * MiB))
      // More rounds than host slots: a leaked connection would leave the next read waiting forever.
      for (let round = 0; round <= HOST_LIMIT; round++) {
        const stream = await backend.read(path, never)
        await once(stream, 'data')
        stream.destroy()
        await once(stream, 'close')
      }
      assert.equal(await sha256(await backend.read(path, never)), await sha256(generated(8 * MiB)))
    }, { writes: false })

    test(`20 parallel writes all succeed within a host limit of ${HOST_LIMIT}`, async (t, dir) => {
      slots.stats.peak = slots.stats.held
      const paths = Array.from({ length: 20 }, (_, i) => `${dir}/parallel-${i}.txt`)
      await Promise.all(paths.map((p) => t.backend.write(p, content(`content of ${p}`), never)))
      for (const p of paths) assert.equal(await text(await t.backend.read(p, never)), `content of ${p}`)
      assert.ok(slots.stats.peak <= HOST_LIMIT, `${slots.stats.peak} connections at once`)
      // Parallel work through one backend uses every slot it may: the limit, not luck, kept it at 2.
      if (t.network) assert.equal(slots.stats.peak, HOST_LIMIT)
    })

    test('a read-only backend refuses write, rename, remove and mkdir with ERR_PERMISSION', async (t, dir, tc) => {
      const { backend } = t
      if (backend.features.writable) return tc.skip('the backend is writable')
      await put(t, `${dir}/kept.txt`, content('kept'))
      await rejectsWith(backend.write(`${dir}/new.txt`, content('x'), never), 'ERR_PERMISSION')
      await rejectsWith(backend.rename(`${dir}/kept.txt`, `${dir}/moved.txt`, never), 'ERR_PERMISSION')
      await rejectsWith(backend.remove(`${dir}/kept.txt`, never), 'ERR_PERMISSION')
      await rejectsWith(backend.mkdir(`${dir}/sub`, never), 'ERR_PERMISSION')
      assert.equal(await text(await backend.read(`${dir}/kept.txt`, never)), 'kept')
    }, { writes: false })

    test(`20 parallel reads all succeed within a host limit of ${HOST_LIMIT}`, async (t, dir, tc) => {
      if (t.backend.features.writable) return tc.skip('the parallel writes test covers it')
      const paths = Array.from({ length: 20 }, (_, i) => `${dir}/parallel-${i}.txt`)
      for (const p of paths) await put(t, p, content(`content of ${p}`))
      slots.stats.peak = slots.stats.held
      await Promise.all(paths.map(async (p) => assert.equal(await text(await t.backend.read(p, never)), `content of ${p}`)))
      assert.ok(slots.stats.peak <= HOST_LIMIT, `${slots.stats.peak} connections at once`)
      if (t.network) assert.equal(slots.stats.peak, HOST_LIMIT)
    }, { writes: false })

    test('read from an offset gives the rest of the file', async (t, dir) => {
      // What resuming needs of a source (the rest of it) and of a destination (its part, hashed again).
      const size = MiB + 5
      const path = `${dir}/file.bin`
      await put(t, path, generated(size))
      for (const offset of [0, 1, CHUNK_BYTES + 3, size - 1, size]) {
        assert.equal(await sha256(await t.backend.read(path, never, offset)), await sha256(slice(size, offset)), `from ${offset}`)
      }
    }, { writes: false })

    test('an append creates a missing file, and a second one continues it to the whole file', async ({ backend }, dir, tc) => {
      if (!backend.features.append) return tc.skip('the backend cannot append')
      const size = MiB + 7
      const cut = CHUNK_BYTES + 11
      const path = `${dir}/resumed.bin`
      await backend.write(path, slice(size, 0, cut), never, { append: true })
      assert.deepEqual(await backend.stat(path, never), { path, type: 'file', size: cut })
      const reported = await backend.write(path, slice(size, cut), never, { append: true })
      assert.deepEqual(await backend.stat(path, never), { path, type: 'file', size })
      // A size the write reports is the whole file's, not the part it added.
      if (reported !== undefined) assert.equal(reported, size)
      assert.equal(await sha256(await backend.read(path, never)), await sha256(generated(size)))
    })

    test('an append told where the file ends (resumeFrom, as a copy that just looked) continues it there', async ({ backend }, dir, tc) => {
      if (!backend.features.append) return tc.skip('the backend cannot append')
      const size = MiB + 7
      const cut = CHUNK_BYTES + 11
      const path = `${dir}/told.bin`
      await backend.write(path, slice(size, 0, cut), never, { append: true, resumeFrom: 0 })
      const reported = await backend.write(path, slice(size, cut), never, { append: true, resumeFrom: cut })
      assert.deepEqual(await backend.stat(path, never), { path, type: 'file', size })
      if (reported !== undefined) assert.equal(reported, size)
      assert.equal(await sha256(await backend.read(path, never)), await sha256(generated(size)))
    })

    test('close frees every host slot', async ({ backend, network }, _dir, tc) => {
      if (!network) return tc.skip('the backend holds no connections')
      await backend.close()
      assert.equal(slots.stats.held, 0)
    }, { writes: false })
  })
}

/** A HostLimiter that counts the slots held, now and at most. */
function countingLimiter(limit: number): { hosts: HostLimiter; stats: { held: number; peak: number } } {
  const inner = createHostLimiter(limit)
  const stats = { held: 0, peak: 0 }
  const hosts: HostLimiter = {
    async acquire(key, signal) {
      const release = await inner.acquire(key, signal)
      stats.peak = Math.max(stats.peak, ++stats.held)
      let released = false
      return () => {
        if (released) return
        released = true
        stats.held--
        release()
      }
    },
  }
  return { hosts, stats }
}

/** `size` deterministic bytes, produced chunk by chunk so that even 64 MiB never sits in memory. */
function generated(size: number): Readable {
  return Readable.from(chunks(size), { objectMode: false })
}

function* chunks(size: number): Generator<Buffer> {
  for (let offset = 0, index = 0; offset < size; offset += CHUNK_BYTES, index++) {
    const chunk = Buffer.from(NOISE.subarray(0, Math.min(CHUNK_BYTES, size - offset)))
    if (chunk.length >= 4) chunk.writeUInt32BE(index, 0)
    yield chunk
  }
}

/** Bytes `start` up to `end` of `generated(size)`. */
function slice(size: number, start: number, end = size): Readable {
  return Readable.from(
    (function* () {
      let offset = 0
      for (const chunk of chunks(size)) {
        const from = Math.max(start - offset, 0)
        const to = Math.min(end - offset, chunk.length)
        if (from < to) yield chunk.subarray(from, to)
        offset += chunk.length
      }
    })(),
    { objectMode: false },
  )
}

/** Bytes, then an error: a source that dies mid-transfer. */
function failingAfter(bytes: number): Readable {
  return Readable.from(
    (function* () {
      yield* chunks(bytes)
      throw new Error('source failed mid-way')
    })(),
    { objectMode: false },
  )
}

/** Never ends on its own: only an abort stops a write of it. */
function endless(): Readable {
  return Readable.from(
    (async function* () {
      for (;;) {
        yield NOISE
        await sleep(5)
      }
    })(),
    { objectMode: false },
  )
}

function content(text: string): Readable {
  return Readable.from([Buffer.from(text)])
}

/** The SHA-256 of everything `stream` gives, read without holding it in memory. */
export async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of stream) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export async function text(stream: Readable): Promise<string> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(chunk as Buffer)
  return Buffer.concat(parts).toString('utf8')
}
