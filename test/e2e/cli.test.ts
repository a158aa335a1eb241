import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { startServer, type TestServer } from '../servers/apubi-server.js'

const entry = new URL('../../src/cli/index.ts', import.meta.url).pathname
let server: TestServer

async function apubi(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', entry, ...args, '--url', server.url])
    return { code: 0, stdout, stderr }
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

before(async () => {
  server = await startServer()
  writeFileSync(join(server.fileRoot, 'clip.ts'), 'clip bytes')
})
after(() => server.stop())

it('load --wait publishes, prints the TaskId and SUCCESS with the destination, exits 0', async () => {
  const result = await apubi('load', pathToFileURL(join(server.fileRoot, 'clip.ts')).href, 'Cli/', '--wait', '--interval', '50')
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /^[0-9a-f-]{36}\nSUCCESS Cli\/clip\.ts\n$/)
  assert.equal(readFileSync(join(server.dataDir, 'cdn/Cli/clip.ts'), 'utf8'), 'clip bytes')
})

it('status prints the state of a task', async () => {
  const taskId = (await apubi('purge', 'Cli/')).stdout.trim()
  const result = await apubi('status', taskId)
  assert.equal(result.code, 0)
  assert.match(result.stdout, /^(SUCCESS Cli\/|IN_PROGRESS)\n$/)
})

it('purge --wait removes it and exits 0', async () => {
  const result = await apubi('purge', 'Cli/', '--wait', '--interval', '50')
  assert.equal(result.code, 0, result.stderr)
  assert.equal(existsSync(join(server.dataDir, 'cdn/Cli')), false)
})

it('load --wait of a missing source exits 1 with FAILED, and says why', async () => {
  const result = await apubi('load', pathToFileURL(join(server.fileRoot, 'missing.ts')).href, 'x.ts', '--wait', '--interval', '50')
  assert.equal(result.code, 1)
  assert.match(result.stdout, /\nFAILED\n$/)
  assert.match(result.stderr, /^reason: ERR_NOT_FOUND .*missing\.ts/m)
})

it('takes a user and password written into --url as HTTP Basic', async () => {
  const guarded = await startServer({ env: { APUBI_SOAP_USER: 'wfm', APUBI_SOAP_PASSWORD: 'p@ss:w/rd' } })
  try {
    const url = new URL(guarded.url)
    url.username = 'wfm'
    url.password = encodeURIComponent('p@ss:w/rd')
    const run = (target: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', entry, 'purge', 'nothing/', '--wait', '--interval', '50', '--url', target]).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      )
    const ok = await run(url.href)
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^[0-9a-f-]{36}\nSUCCESS nothing\/\n$/)
    assert.ok(!`${ok.stdout}${ok.stderr}`.includes('w/rd'))
    url.password = 'guess'
    const refused = await run(url.href)
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /Authentication failed/)
  } finally {
    await guarded.stop()
  }
})

it('a fault exits 2 and names it; credentials in the message are redacted', async () => {
  const unknown = await apubi('status', 'no-such-task')
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /fault \(HTTP 500\): soapenv:Server: Task Id does not exist/)
  const refused = await apubi('load', 'gopher://user:s3cret@host/x', 'x.ts')
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /Unsupported URL scheme gopher/)
  assert.doesNotMatch(refused.stderr, /s3cret/)
})

it('an unreachable server exits 3', async () => {
  const { stderr, code } = await promisify(execFile)(process.execPath, ['--import', 'tsx', entry, 'status', 'x', '--url', 'http://127.0.0.1:1/apubi']).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  )
  assert.equal(code, 3)
  assert.match(stderr, /cannot reach the server/)
})
