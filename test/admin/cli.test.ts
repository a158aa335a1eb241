// `apubi tasks` and `apubi task <id>` against a running server with an admin token: what they print,
// their exit codes, and no credential in their output.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { timeArgument } from '../../src/cli/tasks.js'
import { freePort, startServer, type TestServer } from '../servers/apubi-server.js'
import { taskWhen } from './helpers.js'

const entry = new URL('../../src/cli/index.ts', import.meta.url).pathname
const TOKEN = 'cli-admin-token-0123456789abcdef'
const PASSWORD = 'Cli-S3cret-pw'

async function apubi(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', entry, ...args], { env: { ...process.env, ...env } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

describe('apubi tasks, apubi task', () => {
  let server: TestServer
  let published: string
  let failed: string
  const withToken = (...args: string[]) => apubi([...args, '--url', server.url], { APUBI_ADMIN_TOKEN: TOKEN })

  before(async () => {
    server = await startServer({ env: { APUBI_ADMIN_TOKEN: TOKEN, APUBI_MAX_ATTEMPTS: '1' } })
    writeFileSync(join(server.fileRoot, 'clip.ts'), 'clip bytes')
    const client = new ApubiClient(server.url)
    published = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'clip.ts')).href, 'cli/clip.ts', '<MetaData><metadata key="title">Clip</metadata></MetaData>')
    // Nobody listens on port 1: refused at once, and with one attempt allowed, FAILED.
    failed = await client.loadAsset(`ftp://editor:${PASSWORD}@127.0.0.1:1/in/movie.ts`, 'cli/movie.ts')
    for (const id of [published, failed]) await taskWhen(server, id, (t) => t.state === 'succeeded' || t.state === 'failed', TOKEN)
  })
  after(() => server.stop())

  it('tasks lists newest first, one line each with its duration, a failure\'s reason below it', async () => {
    const result = await withToken('tasks')
    assert.equal(result.code, 0, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.match(lines[0]!, /^TASK\s+STATE\s+KIND\s+PROGRESS\s+CREATED \(UTC\)\s+DURATION\s+SOURCE → DESTINATION$/)
    assert.match(lines[1]!, new RegExp(`^${failed}\\s+failed\\s+load\\s+.*ftp://editor:\\*\\*\\*@127\\.0\\.0\\.1:1/in/movie\\.ts → cli/movie\\.ts$`))
    assert.match(lines[2]!, /^ {2}failed: ERR_UNREACHABLE /)
    assert.match(lines[3]!, new RegExp(`^${published}\\s+succeeded\\s+load\\s+100% of 10 B\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+\\d+s\\s+file://.*/clip\\.ts → cli/clip\\.ts$`))
    assert.equal(lines[4], '(1-2 of 2)')
    assert.equal(result.stdout.includes(PASSWORD), false)
  })

  it('tasks filters by state, time and text, and prints JSON on request', async () => {
    const failedOnly = await withToken('tasks', '--state', 'failed')
    assert.equal(failedOnly.code, 0, failedOnly.stderr)
    assert.ok(failedOnly.stdout.includes(failed) && !failedOnly.stdout.includes(published))
    const recent = await withToken('tasks', '--since', '1h', '--search', 'CLIP', '--json')
    const page = JSON.parse(recent.stdout)
    assert.equal(page.total, 1)
    assert.equal(page.tasks[0].id, published)
    const none = await withToken('tasks', '--until', '2000-01-01T00:00:00Z')
    assert.equal(none.stdout.trimEnd().split('\n').at(-1), '(no task matches)')
  })

  it('task shows the fields, files with checksums, metadata and the attempt history', async () => {
    const ok = await withToken('task', published)
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, new RegExp(`^Task: +${published}\nState: +succeeded \\(SUCCESS\\)\n`))
    assert.match(ok.stdout, /\nFinal destination: cli\/clip\.ts\n/)
    assert.match(ok.stdout, /\nAttempt history:\n {2}none\n/)
    assert.match(ok.stdout, /\nFiles:\n {2}clip\.ts {2}10 bytes {2}verified by size\n/)
    assert.ok(ok.stdout.includes(`    sha256 ${createHash('sha256').update('clip bytes').digest('hex')}\n`))
    assert.match(ok.stdout, /\nMetadata:\n {2}title = Clip\n$/)

    const bad = await withToken('task', failed)
    assert.match(bad.stdout, /\nReason: +ERR_UNREACHABLE /)
    assert.match(bad.stdout, /\nAttempt history:\n {2}#1 {2}\S+ {2}ERR_UNREACHABLE /)
    assert.equal(bad.stdout.includes(PASSWORD), false)
  })

  it('task finds a task by the first characters of its TaskId; tasks orders as --sort asks', async () => {
    const short = await withToken('task', published.slice(0, 8))
    assert.equal(short.code, 0, short.stderr)
    assert.match(short.stdout, new RegExp(`^Task: +${published}\n`))
    assert.match(short.stdout, /\nDuration: +\d+s \(waited \d+s\)\n/)
    const oldest = await withToken('tasks', '--sort', 'oldest', '--json')
    assert.deepEqual(JSON.parse(oldest.stdout).tasks.map((t: { id: string }) => t.id), [published, failed])
    const bad = await withToken('tasks', '--sort', 'biggest')
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--sort biggest: give one of active, newest, oldest, finished, longest, shortest/)
  })

  it('task shows what reading a published streaming package back verified', async () => {
    // A small HLS package: a master, one media playlist of two 4 s segments. Published after the listings above.
    mkdirSync(join(server.fileRoot, 'pkg/v0'), { recursive: true })
    writeFileSync(join(server.fileRoot, 'pkg/master.m3u8'), '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/prog.m3u8\n')
    writeFileSync(join(server.fileRoot, 'pkg/v0/prog.m3u8'), '#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n#EXT-X-ENDLIST\n')
    for (const name of ['a.ts', 'b.ts']) writeFileSync(join(server.fileRoot, 'pkg/v0', name), name)
    const packaged = await new ApubiClient(server.url).loadAsset(`${pathToFileURL(join(server.fileRoot, 'pkg')).href}/`, 'cli/pkg/')
    await taskWhen(server, packaged, (t) => t.state === 'succeeded' || t.state === 'failed', TOKEN)
    const shown = await withToken('task', packaged)
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, /\nPackage verified: +2 manifests, 1 renditions, 3 referenced files, 8\.0 s\n/)
    const json = JSON.parse((await withToken('task', packaged, '--json')).stdout)
    assert.deepEqual(json.package, { manifests: 2, renditions: 1, referencedFiles: 3, durationSeconds: 8 })
  })

  it('exits 2 on an error answer (no token, unknown task, bad filter) and 3 when the server is not there', async () => {
    const noToken = await apubi(['tasks', '--url', server.url], { APUBI_ADMIN_TOKEN: '' })
    assert.equal(noToken.code, 2)
    assert.match(noToken.stderr, /^HTTP 401: ERR_UNAUTHENTICATED: An admin token is required/)
    const unknown = await withToken('task', 'no-such-task')
    assert.equal(unknown.code, 2)
    assert.equal(unknown.stderr, 'HTTP 404: ERR_TASK_NOT_FOUND: Task Id does not exist: no-such-task\n')
    const badFilter = await withToken('tasks', '--since', 'last week')
    assert.equal(badFilter.code, 2)
    assert.match(badFilter.stderr, /--since last week: give a date-time/)
    const gone = await apubi(['tasks', '--url', `http://127.0.0.1:${await freePort()}/apubi`])
    assert.equal(gone.code, 3)
    assert.match(gone.stderr, /^cannot reach the server: /)
  })

  it('reads ages and date-times for --since and --until', () => {
    const now = Date.UTC(2025, 0, 31, 12)
    assert.equal(timeArgument('30m', '--since', now), '2025-01-31T11:30:00.000Z')
    assert.equal(timeArgument('2h', '--since', now), '2025-01-31T10:00:00.000Z')
    assert.equal(timeArgument('1d', '--since', now), '2025-01-30T12:00:00.000Z')
    assert.equal(timeArgument('2025-01-01T00:00:00Z', '--since', now), '2025-01-01T00:00:00Z')
    assert.equal(timeArgument('1735689600000', '--since', now), '1735689600000')
    assert.throws(() => timeArgument('soon', '--until', now), /--until soon: give a date-time/)
  })
})
