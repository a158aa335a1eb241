import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { renderProgress } from '../../src/cli/progress-bar.js'
import { privateFile, startSlowOrigin, type SlowOrigin } from '../admin/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'

const cli = new URL('../../src/cli/index.ts', import.meta.url).pathname
const ORIGIN_PASSWORD = 'pr0gress-secret'
const SIZE = 1 << 20

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) =>
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    ),
  )
}

const apubi = (args: string[], env?: Record<string, string>) => run(process.execPath, ['--import', 'tsx', cli, ...args], env)
/** The frames of a progress bar, as redrawn with a carriage return. */
const frames = (text: string) => text.split('\r').filter((f) => f.startsWith('['))
const percentOf = (frame: string) => Number(/\]\s+(\d+) %/.exec(frame)?.[1])

describe('apubi load --wait shows a progress bar from our admin API', () => {
  let server: TestServer
  let slow: SlowOrigin

  before(async () => {
    server = await startServer()
    await privateFile(server.fileRoot, 'big.bin', SIZE)
    slow = await startSlowOrigin(server.fileRoot, ORIGIN_PASSWORD, 300_000)
  })
  after(async () => {
    await slow?.close()
    await server?.stop()
  })

  it('redraws bytes, throughput and ETA as the publish advances, and ends at 100 %', async () => {
    const result = await apubi(['load', slow.url('big.bin'), 'progress/big.bin', '--wait', '--interval', '200', '--progress', '--url', server.url])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^[0-9a-f-]{36}\nSUCCESS progress\/big\.bin\n$/)
    const shown = frames(result.stderr)
    const percents = shown.map(percentOf)
    assert.ok(shown.length >= 3, `frames: ${JSON.stringify(shown)}`)
    assert.ok(percents.some((p) => p > 0 && p < 100), `an intermediate frame: ${percents}`)
    assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'the percentage never goes back')
    assert.ok(shown.some((f) => /\d+\.\d KiB\/s {2}ETA \d+s/.test(f)), `throughput and ETA: ${JSON.stringify(shown)}`)
    // The last line sums up: total time and average speed.
    assert.match(shown.at(-1)!, /^\[#{24}\] 100 % {2}1\.0 MiB \/ 1\.0 MiB {2}in \d+s {2}\d+(\.\d)? (B|KiB|MiB)\/s on average\u001b\[K\n?$/)
    assert.ok(!result.stderr.includes(ORIGIN_PASSWORD) && !result.stdout.includes(ORIGIN_PASSWORD))
  })

  it('draws it unasked on a terminal (a pseudo-terminal from script(1)), and not when told --no-progress', async () => {
    const command = (extra: string) =>
      `${process.execPath} --import tsx ${cli} load '${slow.url('big.bin')}' progress/tty.bin --wait --interval 200 --url ${server.url} ${extra}`
    const onTerminal = await run('script', ['-qec', command(''), '/dev/null'])
    assert.equal(onTerminal.code, 0, onTerminal.stdout)
    assert.ok(frames(onTerminal.stdout).length >= 2, `frames on the terminal: ${JSON.stringify(onTerminal.stdout)}`)
    const quiet = await run('script', ['-qec', command('--no-progress'), '/dev/null'])
    assert.equal(quiet.code, 0, quiet.stdout)
    assert.deepEqual(frames(quiet.stdout), [])
    assert.match(quiet.stdout, /SUCCESS progress\/tty\.bin/)
  })

  it('falls back to plain polling when the admin API refuses us (a token is required)', async () => {
    const guarded = await startServer({ env: { APUBI_ADMIN_TOKEN: 'admin-token-for-progress' } })
    try {
      await privateFile(guarded.fileRoot, 'small.bin', 10_000)
      const source = `file://${guarded.fileRoot}/private/small.bin`
      const result = await apubi(['load', source, 'progress/small.bin', '--wait', '--interval', '50', '--progress', '--url', guarded.url], { APUBI_ADMIN_TOKEN: '' })
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(frames(result.stderr), [])
      assert.match(result.stdout, /SUCCESS progress\/small\.bin/)
      const withToken = await apubi(['load', source, 'progress/again.bin', '--wait', '--interval', '50', '--progress', '--url', guarded.url], { APUBI_ADMIN_TOKEN: 'admin-token-for-progress' })
      assert.match(withToken.stderr, /\] 100 %/)
      // A failed task's reason comes from the admin API when it answers; else the command says where to look.
      const missing = `file://${guarded.fileRoot}/private/missing.bin`
      const blind = await apubi(['load', missing, 'progress/missing.bin', '--wait', '--interval', '50', '--url', guarded.url], { APUBI_ADMIN_TOKEN: '' })
      assert.equal(blind.code, 1)
      assert.match(blind.stderr, /^reason: not available here; see the server's log for task [0-9a-f-]{36}/m)
      const told = await apubi(['load', missing, 'progress/missing.bin', '--wait', '--interval', '50', '--url', guarded.url], { APUBI_ADMIN_TOKEN: 'admin-token-for-progress' })
      assert.equal(told.code, 1)
      assert.match(told.stderr, /^reason: ERR_NOT_FOUND /m)
    } finally {
      await guarded.stop()
    }
  })
})

describe('against another vendor\'s APUBI server (no admin API)', () => {
  let other: Server
  let url: string
  let polls = 0

  before(async () => {
    // Answers as the vendor's samples do: a TaskId, then IN_PROGRESS twice, then SUCCESS.
    other = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        const inner = body.includes('LoadAsset') ? '<ns:LoadAssetResponse><ns:TaskId>T-1</ns:TaskId></ns:LoadAssetResponse>' : `<ns:GetTaskStatusResponse><ns:Status>${++polls < 3 ? 'IN_PROGRESS' : 'SUCCESS'}</ns:Status><ns:DestinationAsset>d/a.ts</ns:DestinationAsset></ns:GetTaskStatusResponse>`
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="wfm:APUBI/v1/schemas"><soapenv:Body>${inner}</soapenv:Body></soapenv:Envelope>`)
      })
    })
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(other.address() as AddressInfo).port}/apubi`
  })
  after(() => new Promise<void>((resolve) => other.close(() => resolve())))

  it('polls GetTaskStatus alone and prints the outcome, with no bar', async () => {
    const result = await apubi(['load', 'ftp://h/a.ts', 'd/a.ts', '--wait', '--interval', '20', '--progress', '--url', url])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'T-1\nSUCCESS d/a.ts\n')
    assert.equal(result.stderr, '')
    assert.equal(polls, 3)
  })
})

describe('renderProgress', () => {
  const task = (over: Partial<Parameters<typeof renderProgress>[0]>) => ({
    state: 'running' as const,
    progress: { bytesDone: 0, bytesTotal: 0, filesDone: 0, filesTotal: 0 },
    ...over,
  })
  const cases: Array<[string, Parameters<typeof renderProgress>[0], string]> = [
    ['nothing known yet', task({}), '[........................]   0 %  0 B'],
    [
      'a package half done',
      task({ progress: { bytesDone: 1.5 * 2 ** 30, bytesTotal: 3 * 2 ** 30, filesDone: 1000, filesTotal: 2001 }, bytesPerSecond: 52.3 * 2 ** 20, etaSeconds: 29 }),
      '[############............]  50 %  1.5 GiB / 3.0 GiB  1000/2001 files  52.3 MiB/s  ETA 29s',
    ],
    ['a long wait', task({ progress: { bytesDone: 1, bytesTotal: 2048, filesDone: 0, filesTotal: 1 }, etaSeconds: 3725 }), '[........................]   0 %  1 B / 2.0 KiB  ETA 1h02m'],
    ['done', task({ state: 'succeeded', progress: { bytesDone: 999, bytesTotal: 999, filesDone: 1, filesTotal: 1 }, bytesPerSecond: 5 }), '[########################] 100 %  999 B / 999 B'],
    [
      'done, the last line: total time and average speed',
      task({ state: 'succeeded', progress: { bytesDone: 3 * 2 ** 30, bytesTotal: 3 * 2 ** 30, filesDone: 2001, filesTotal: 2001 }, timings: { elapsedSeconds: 60 } }),
      '[########################] 100 %  3.0 GiB / 3.0 GiB  2001/2001 files  in 1m00s  51.2 MiB/s on average',
    ],
  ]
  for (const [name, input, expected] of cases) it(name, () => assert.equal(renderProgress(input), expected))
})
