// Several server processes on one PostgreSQL database (APUBI_DATABASE_URL), as behind a load balancer:
// any instance answers for any task, work spreads over all of them, an instance killed mid-transfer
// loses no task, one request sent to two instances at once is one task, and the per-host connection
// cap holds across instances. The origin is an FTP server of the test's own that counts every write
// and rename, and can hold uploads mid-way (a gate) so that "mid-transfer" is a state, not a moment.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { connect, createServer, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { FileSystem, type FtpConnection } from 'ftp-srv'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFtpSrv, type FtpServer } from '../servers/ftp-server.js'
import { startPostgres, type PostgresServer } from '../servers/postgres.js'
import { eventually, listFiles } from './helpers.js'

const CAP = 2
const MB = 1 << 20

/** Holds uploads past their first MiB while closed. */
class Gate {
  private waiting: Array<() => void> = []
  closed = false
  close(): void {
    this.closed = true
  }
  open(): void {
    this.closed = false
    for (const go of this.waiting.splice(0)) go()
  }
  pass(): Promise<void> {
    return this.closed ? new Promise((resolve) => this.waiting.push(resolve)) : Promise.resolve()
  }
}

/**
 * What the origin saw, by path: uploads (STOR, or APPE: our FTP client appends to its temporary file
 * even when it starts it), those of them that continued a partial file, and renames into place.
 */
class OriginLog {
  readonly writes = new Map<string, number>()
  readonly resumes = new Map<string, number>()
  readonly renamedTo = new Map<string, number>()
  count(map: Map<string, number>, path: string): void {
    map.set(path, (map.get(path) ?? 0) + 1)
  }
  /** Per temporary file of `target` (`dir/.name.apubi-<task>.part`): uploads and resumes. */
  uploadsOf(target: string): { writes: number; resumes: number } {
    const prefix = posix.join(posix.dirname(target), `.${posix.basename(target)}.apubi-`)
    const sum = (map: Map<string, number>) => [...map].filter(([path]) => path.startsWith(prefix)).reduce((n, [, count]) => n + count, 0)
    return { writes: sum(this.writes), resumes: sum(this.resumes) }
  }
}

/** A path as the client named it, relative to the origin's root (the client may send it relative to its working folder). */
const fromRoot = (cwd: string, path: string) => posix.resolve('/', cwd, path).slice(1)

/** ftp-srv's file system, counting into `log` and holding uploads at `gate` after their first MiB. */
function countingFiles(log: OriginLog, gate: Gate) {
  return class CountingFiles extends FileSystem {
    override write(fileName: string, options: { append?: boolean; start?: unknown } = {}) {
      const path = fromRoot(this.cwd, fileName)
      log.count(log.writes, path)
      if (options.append && (statSync(join(this.root, path), { throwIfNoEntry: false })?.size ?? 0) > 0) log.count(log.resumes, path)
      const { stream: file } = super.write(fileName, options) as { stream: NodeJS.WritableStream & Writable }
      let bytes = 0
      return new Writable({
        write(chunk: Buffer, _, done) {
          bytes += chunk.length
          const go = () => (file.write(chunk) ? done() : file.once('drain', () => done()))
          if (bytes > MB) void gate.pass().then(go)
          else go()
        },
        final(done) {
          file.end(() => done())
        },
        destroy(error, done) {
          file.destroy(error ?? undefined)
          done(error)
        },
      })
    }

    override rename(from: string, to: string): Promise<unknown> {
      log.count(log.renamedTo, fromRoot(this.cwd, to))
      return super.rename(from, to)
    }
  }
}

/**
 * A TCP proxy in front of the origin that keeps when each connection opened and closed. The cap is
 * judged on connections open together for longer than a hand-over: when an instance closes a
 * connection and another, told the slot is free, opens the next, both can reach this process in one
 * turn of its event loop (busy with the FTP server too), and the new one may be seen first.
 */
async function startConnectionCounter(targetPort: number) {
  const spans: Array<{ opened: number; closed?: number }> = []
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const span: { opened: number; closed?: number } = { opened: performance.now() }
    spans.push(span)
    const upstream = connect(targetPort, '127.0.0.1')
    const close = () => {
      span.closed ??= performance.now()
      client.destroy()
      upstream.destroy()
    }
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket)).once('close', close).on('error', close)
    }
    client.once('end', () => (span.closed ??= performance.now()))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    /** Connections open now. */
    open: () => spans.filter((span) => span.closed === undefined).length,
    /** The most connections that were open together for longer than `handOverMs`. */
    peak(handOverMs: number): number {
      const now = performance.now()
      const changes = spans
        .map(({ opened, closed = now }) => [opened + handOverMs, closed] as const)
        .filter(([from, to]) => to > from)
        .flatMap(([from, to]) => [[from, +1] as const, [to, -1] as const])
        .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      let open = 0
      let peak = 0
      for (const [, change] of changes) peak = Math.max(peak, (open += change))
      return peak
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** The server's JSON log lines with this message. */
function logLines(server: TestServer, msg: string): Array<Record<string, unknown>> {
  return server
    .output()
    .split('\n')
    .filter((line) => line.includes(`"msg":"${msg}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

const ranOn = (server: TestServer, msg: string, taskId: string) => logLines(server, msg).some((line) => line['taskId'] === taskId)

describe('several instances on one PostgreSQL database', { timeout: 300_000 }, () => {
  let postgres: PostgresServer
  let databaseUrl: string
  let instances: TestServer[]
  let clients: ApubiClient[]
  let origin: FtpServer
  let shared: string
  const log = new OriginLog()
  const gate = new Gate()

  before(async () => {
    postgres = await startPostgres()
    databaseUrl = await postgres.createDatabase('scale')
    shared = mkdtempSync(join(tmpdir(), 'apubi-shared-'))
    origin = await startFtpSrv(mkdtempSync(join(tmpdir(), 'apubi-origin-')), {
      fileSystem: (connection: FtpConnection, root: string) => new (countingFiles(log, gate))(connection, { root, cwd: '/' }),
    })
    const env = {
      APUBI_DATABASE_URL: databaseUrl,
      // Short leases: a killed instance's tasks are taken back within seconds.
      APUBI_LEASE_MS: '2000',
      APUBI_CONNECTIONS_PER_HOST: String(CAP),
      // One task at a time per instance: a resumed FTP upload holds two connections to the origin (the
      // append and the read-back of the partial file), and two resumes holding one slot each would
      // wait on each other under a cap of 2 until the idle timeout (see README, Several instances).
      APUBI_WORKERS: '1',
    }
    // Started together: they migrate the empty database at once, under its lock.
    instances = await Promise.all([0, 1, 2].map(() => startServer({ env, fileRoot: shared })))
    clients = instances.map((server) => new ApubiClient(server.url))
  })

  after(async () => {
    gate.open()
    for (const server of instances ?? []) await server.stop()
    await origin?.close()
    await postgres?.stop()
    if (origin) rmSync(origin.root, { recursive: true, force: true })
    if (shared) rmSync(shared, { recursive: true, force: true })
    assert.doesNotMatch((instances ?? []).map((s) => s.output()).join('\n'), /Pg-Secret-5c1e/, 'the database password appears in no log')
  })

  const source = (name: string, bytes: number) => {
    const path = join(shared, name)
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, randomBytes(bytes))
    return pathToFileURL(path).href
  }

  it('200 publishes sent round-robin: each answered by another instance, work done on every one, each file written once', async () => {
    const ids = await Promise.all(
      Array.from({ length: 200 }, (_, i) => clients[i % 3]!.loadAsset(source(`many/${i}.ts`, 1_000 + i * 50), origin.url(`many/${i}.ts`))),
    )
    assert.equal(new Set(ids).size, 200)
    // One poll at a time: 200 pollers at once would take the two cores from the servers.
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(await clients[(i + 1) % 3]!.waitFor(id, 100), { status: 'SUCCESS', destinationAsset: origin.url(`many/${i}.ts`) })
    }

    for (let i = 0; i < 200; i++) {
      assert.deepEqual(readFileSync(join(origin.root, `many/${i}.ts`)), readFileSync(join(shared, `many/${i}.ts`)), `many/${i}.ts`)
      assert.equal(log.renamedTo.get(`many/${i}.ts`), 1, `many/${i}.ts renamed into place once`)
    }
    for (let i = 0; i < 200; i++) assert.deepEqual(log.uploadsOf(`many/${i}.ts`), { writes: 1, resumes: 0 }, `many/${i}.ts uploaded once`)
    assert.deepEqual(await listFiles(join(origin.root, 'many')), Array.from({ length: 200 }, (_, i) => `${i}.ts`).sort())

    // Each task ran on exactly one instance, and every instance ran some.
    const perInstance = instances.map((server) => ids.filter((id) => ranOn(server, 'task succeeded', id)).length)
    assert.equal(perInstance.reduce((a, b) => a + b), 200, `tasks per instance: ${perInstance}`)
    assert.ok(perInstance.every((count) => count > 0), `tasks per instance: ${perInstance}`)
  })

  it('the same LoadAsset sent to two instances at the same moment gets one TaskId', async () => {
    gate.close() // each task stays running while its twin arrives
    const ids: string[] = []
    try {
      for (let round = 0; round < 5; round++) {
        const request = [source(`twin/${round}.ts`, 2 * MB), origin.url(`twin/${round}.ts`)] as const
        const [a, b] = await Promise.all([clients[round % 3]!.loadAsset(...request), clients[(round + 1) % 3]!.loadAsset(...request)])
        assert.equal(a, b, `round ${round}`)
        ids.push(a)
      }
    } finally {
      gate.open()
    }
    for (const id of ids) assert.equal((await clients[2]!.waitFor(id, 100)).status, 'SUCCESS')
    const rows = await postgres.query<{ count: number }>(databaseUrl, `SELECT count(*)::int AS count FROM task WHERE destination LIKE '%/twin/%'`)
    assert.equal(rows[0]?.count, 5)
  })

  it(`with a cap of ${CAP} connections per host, an origin never sees more at once, however many instances work for it`, async () => {
    const counter = await startConnectionCounter(origin.port)
    const through = (path: string) => origin.url(path).replace(`:${origin.port}/`, `:${counter.port}/`)
    try {
      gate.close()
      const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => clients[i % 3]!.loadAsset(source(`cap/${i}.ts`, 2 * MB), through(`cap/${i}.ts`))))
      // Every slot is taken, the uploads held mid-way, the other tasks waiting for a slot in every instance.
      await eventually(() => (counter.open() >= CAP ? true : undefined))
      await eventually(() => (instances.every((server) => logLines(server, 'task started').some((line) => ids.includes(line['taskId'] as string))) ? true : undefined))
      assert.equal(counter.open(), CAP, 'connections open while every slot is held')
      gate.open()
      for (const id of ids) assert.equal((await clients[0]!.waitFor(id, 100)).status, 'SUCCESS')
      assert.equal(counter.peak(100), CAP, `at most ${CAP} connections open together (for longer than a 100 ms hand-over)`)
      for (let i = 0; i < 12; i++) assert.deepEqual(readFileSync(join(origin.root, `cap/${i}.ts`)), readFileSync(join(shared, `cap/${i}.ts`)))
    } finally {
      gate.open()
      await counter.close()
    }
  })

  it('an instance killed mid-transfer: the others finish its tasks once its lease expires, every file whole and published once', async () => {
    gate.close()
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => clients[i % 3]!.loadAsset(source(`kill/${i}.ts`, 4 * MB), origin.url(`kill/${i}.ts`))))
    // An upload held past its first MiB: the instance that runs it is the one to kill.
    const held = await eventually(async () => {
      const parts = (await listFiles(join(origin.root, 'kill')).catch(() => [])).filter((f) => f.endsWith('.part'))
      for (const part of parts) {
        if ((statSync(join(origin.root, 'kill', part), { throwIfNoEntry: false })?.size ?? 0) < MB / 2) continue
        const id = ids.find((candidate) => part.includes(`.apubi-${candidate.slice(0, 8)}.part`))
        const runner = instances.findIndex((server) => id && ranOn(server, 'task started', id))
        if (id && runner >= 0) return { id, runner }
      }
      return undefined
    })
    const victim = instances[held.runner]!
    await victim.kill()
    gate.open()

    const survivors = instances.filter((server) => server !== victim)
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(await new ApubiClient(survivors[i % 2]!.url).waitFor(id, 100), { status: 'SUCCESS', destinationAsset: origin.url(`kill/${i}.ts`) })
      assert.deepEqual(readFileSync(join(origin.root, `kill/${i}.ts`)), readFileSync(join(shared, `kill/${i}.ts`)), `kill/${i}.ts`)
      assert.equal(log.renamedTo.get(`kill/${i}.ts`), 1, `kill/${i}.ts published once`)
    }
    assert.deepEqual(await listFiles(join(origin.root, 'kill')), Array.from({ length: 6 }, (_, i) => `${i}.ts`).sort(), 'no temporary file left')

    // The killed instance's tasks were taken back and finished by a survivor, on a second attempt;
    // every other task ran once, uploaded once.
    const interrupted = ids.filter((id) => ranOn(victim, 'task started', id) && !ranOn(victim, 'task succeeded', id))
    assert.ok(interrupted.includes(held.id))
    assert.ok(survivors.some((server) => logLines(server, 'took back tasks whose lease expired').length > 0))
    for (const id of interrupted) assert.ok(survivors.some((server) => ranOn(server, 'task succeeded', id)), `${id} finished by a survivor`)
    const attempts = await postgres.query<{ id: string; attempts: number }>(databaseUrl, 'SELECT id, attempts FROM task WHERE id = ANY ($1)', [ids])
    const linesOf = (id: string) => instances.flatMap((server) => server.output().split('\n').filter((line) => line.includes(id))).join('\n')
    for (const { id, attempts: count } of attempts) assert.equal(count, interrupted.includes(id) ? 2 : 1, `${id}:\n${linesOf(id)}`)
    for (const [i, id] of ids.entries()) {
      if (id === held.id) {
        // Killed mid-upload: a survivor continued the partial file rather than uploading it again.
        assert.deepEqual(log.uploadsOf(`kill/${i}.ts`), { writes: 2, resumes: 1 }, `kill/${i}.ts`)
        const [file] = await postgres.query<{ resumed_from: number }>(databaseUrl, 'SELECT resumed_from FROM task_file WHERE task_id = $1', [id])
        assert.ok(file && file.resumed_from >= MB / 2, `resumed from byte ${file?.resumed_from}`)
      } else if (!interrupted.includes(id)) {
        assert.deepEqual(log.uploadsOf(`kill/${i}.ts`), { writes: 1, resumes: 0 }, `kill/${i}.ts uploaded once`)
      }
    }
  })
})
