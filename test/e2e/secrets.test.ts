// Secrets kept secret (issue 4, item 5): a real server at log level debug, with a secret key, SOAP
// authentication and configured credentials, is made to fail on purpose with URLs carrying passwords;
// then every output anyone can see is searched for the passwords and keys: none. The one exception is
// the WFM's own answer: GetTaskStatus gives back the DestinationAsset exactly as the WFM sent it.
//
// Add an output to `outputs` when one appears: the sweep covers it.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { escapeXml } from '../../src/soap/index.js'
import { createSealer } from '../../src/tasks/sealing.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startFtpSrv, type FtpServer } from '../servers/ftp-server.js'

/** The password of every URL that must fail, and in every configured secret below: never shown anywhere. */
const SECRET = 's3cret'
const CONFIGURED_PASSWORD = `cfg-${SECRET}-1`
const S3_SECRET_KEY = `s3-${SECRET}-2`
const SOAP_USER = 'wfm'
const SOAP_PASSWORD = `soap-${SECRET}-3`
const KEY = randomBytes(32)

/** One output an operator, a client or an attacker with the files can see. */
interface Output {
  readonly name: string
  read(): string
}

interface SoapAnswer {
  readonly operation: string
  readonly status: number
  readonly body: string
}

const cliEntry = new URL('../../src/cli/index.ts', import.meta.url).pathname

describe('secrets kept secret', () => {
  const base = mkdtempSync(join(tmpdir(), 'apubi-secrets-'))
  let origin: FtpServer
  let server: TestServer
  let clip: string
  const answers: SoapAnswer[] = []
  const cliOutput: string[] = []
  const startErrors: string[] = []
  /** GetTaskStatus answers that carry the WFM's own destination URL, credentials included, by design. */
  const wfmDestinationAnswers: SoapAnswer[] = []
  let databaseBytes = ''

  const outputs: Output[] = [
    { name: 'server log (stdout and stderr, level debug)', read: () => server.output() },
    { name: 'SOAP answers and faults', read: () => answers.map((a) => a.body).join('\n') },
    { name: 'CLI output (stdout and stderr)', read: () => cliOutput.join('\n') },
    { name: 'start-up errors', read: () => startErrors.join('\n') },
    { name: 'database files (apubi.sqlite, -wal, -shm; while running and after the stop)', read: () => databaseBytes },
    { name: 'admin API (task list, every task\'s detail) and the dashboard page', read: () => adminOutput.join('\n') },
    { name: 'metrics (/metrics)', read: () => metricsOutput },
  ]
  const adminOutput: string[] = []
  let metricsOutput = ''

  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

  /** One SOAP call as the WFM makes it; every answer is kept for the sweep. */
  async function soap(operation: string, fields: Record<string, string>, authorization = basic(SOAP_USER, SOAP_PASSWORD)): Promise<SoapAnswer> {
    const inner = Object.entries(fields)
      .map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`)
      .join('')
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"${operation}"`, Authorization: authorization },
      body:
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>' +
        `<${operation} xmlns="wfm:APUBI/v1/schemas">${inner}</${operation}></soap:Body></soap:Envelope>`,
    })
    const answer = { operation, status: response.status, body: await response.text() }
    answers.push(answer)
    return answer
  }

  const valueOf = (answer: SoapAnswer, element: string): string | undefined => new RegExp(`<(?:\\w+:)?${element}>([^<]*)</`).exec(answer.body)?.[1]

  async function submit(operation: 'LoadAsset' | 'PurgeAsset', fields: Record<string, string>): Promise<string> {
    const answer = await soap(operation, fields)
    const taskId = valueOf(answer, 'TaskId')
    assert.ok(taskId, `${operation} gave a TaskId: ${answer.body}`)
    return taskId
  }

  /** Polls GetTaskStatus until the task ends; its final answer. */
  async function finalStatus(taskId: string): Promise<SoapAnswer> {
    for (;;) {
      const answer = await soap('GetTaskStatus', { TaskId: taskId })
      if (valueOf(answer, 'Status') !== 'IN_PROGRESS') return answer
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async function apubi(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = { ...process.env, APUBI_SOAP_USER: SOAP_USER, APUBI_SOAP_PASSWORD: SOAP_PASSWORD }
    const result = await promisify(execFile)(process.execPath, ['--import', 'tsx', cliEntry, ...args, '--url', server.url], { env }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    )
    // What it printed, not the command line: that is the operator's own input.
    cliOutput.push(result.stdout + result.stderr)
    return result
  }

  /** A URL on the origin FTP server with another user's password or another password: refused. */
  const wrongPasswordUrl = (path: string) => `ftp://${origin.user}:${SECRET}@${origin.host}:${origin.port}/${path}`

  before(async () => {
    mkdirSync(join(base, 'origin'))
    origin = await startFtpSrv(join(base, 'origin'))
    const config = join(base, 'config.json')
    writeFileSync(
      config,
      JSON.stringify({
        credentials: [{ url: `ftp://${origin.host}:${origin.port}`, user: origin.user, password: CONFIGURED_PASSWORD }],
        s3Buckets: { media: { endpoint: 'http://127.0.0.1:9', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: S3_SECRET_KEY } },
      }),
    )
    server = await startServer({
      env: {
        APUBI_LOG_LEVEL: 'debug',
        APUBI_CONFIG: config,
        APUBI_SECRET_KEY: KEY.toString('hex'),
        APUBI_SOAP_USER: SOAP_USER,
        APUBI_SOAP_PASSWORD: SOAP_PASSWORD,
        APUBI_MAX_ATTEMPTS: '2',
      },
    })
    clip = join(server.fileRoot, 'clip.ts')
    writeFileSync(clip, 'clip bytes')
  })

  after(async () => {
    await server?.stop()
    await origin?.close()
    rmSync(base, { recursive: true, force: true })
  })

  it('publishing with a wrong password in the source, the destination, the configured credentials, or purging with one, fails the task', async () => {
    const tasks = [
      await submit('LoadAsset', { SourceAssetUrl: wrongPasswordUrl('in/clip.ts'), DestinationAsset: 'Secrets/from-source.ts' }),
      await submit('LoadAsset', { SourceAssetUrl: pathToFileURL(clip).href, DestinationAsset: wrongPasswordUrl('out/clip.ts') }),
      await submit('LoadAsset', { SourceAssetUrl: `ftp://${origin.host}:${origin.port}/in/clip.ts`, DestinationAsset: 'Secrets/from-configured.ts' }),
      await submit('PurgeAsset', { DestinationAsset: wrongPasswordUrl('out/clip.ts') }),
    ]
    for (const taskId of tasks) {
      assert.equal(valueOf(await finalStatus(taskId), 'Status'), 'FAILED')
      assert.match(server.output(), new RegExp(`"taskId":"${taskId}".*"code":"ERR_AUTH","error":"stat ftp://${origin.host}:${origin.port}/[^"]*: 530 Login incorrect","msg":"task failed"`))
    }
  })

  it('a source whose query carries a token fails without the token showing', async () => {
    // Nothing listens on port 9: refused at once, retried once, FAILED.
    const taskId = await submit('LoadAsset', { SourceAssetUrl: `http://127.0.0.1:9/vod/a.m3u8?token=${SECRET}&start=0`, DestinationAsset: 'Secrets/token/' })
    assert.equal(valueOf(await finalStatus(taskId), 'Status'), 'FAILED')
    assert.match(server.output(), new RegExp(`"taskId":"${taskId}".*"error":"read http://127\\.0\\.0\\.1:9/vod/a\\.m3u8: connect ECONNREFUSED`))
  })

  it('requests that fault name their URLs without the password', async () => {
    // Each detail message as it starts: what follows may name a rule, and the sweep below covers it whole.
    const faults: Array<[operation: string, fields: Record<string, string>, message: string]> = [
      ['LoadAsset', { SourceAssetUrl: `gopher://${origin.user}:${SECRET}@origin.example/x.ts`, DestinationAsset: 'x.ts' }, `Unsupported URL scheme gopher: in gopher://${origin.user}:***@origin.example/x.ts`],
      ['LoadAsset', { SourceAssetUrl: `ftp://${origin.user}:${SECRET}@169.254.169.254/x.ts`, DestinationAsset: 'x.ts' }, `ftp://${origin.user}:***@169.254.169.254/x.ts is not allowed: `],
      ['LoadAsset', { SourceAssetUrl: `${wrongPasswordUrl('bad%zz.ts')}`, DestinationAsset: 'x.ts' }, `Malformed percent-encoding in ftp://${origin.user}:***@${origin.host}:${origin.port}/bad%zz.ts`],
      ['PurgeAsset', { DestinationAsset: `gopher://${origin.user}:${SECRET}@origin.example/x.ts` }, `Unsupported URL scheme gopher: in gopher://${origin.user}:***@origin.example/x.ts`],
      ['GetTaskStatus', { TaskId: wrongPasswordUrl('x.ts') }, `Task Id does not exist: ftp://${origin.user}:***@${origin.host}:${origin.port}/x.ts`],
    ]
    for (const [operation, fields, message] of faults) {
      const answer = await soap(operation, fields)
      assert.equal(answer.status, 500, answer.body)
      assert.ok(valueOf(answer, 'message')?.startsWith(escapeXml(message)), `${operation}: ${valueOf(answer, 'message')}`)
    }
    const refused = await soap('GetTaskStatus', { TaskId: 'any' }, basic(SOAP_USER, `wrong-${SECRET}`))
    assert.equal(refused.status, 401)
    assert.equal(valueOf(refused, 'message'), 'Authentication failed')
  })

  it('the WFM gets back the DestinationAsset it sent, credentials included, exactly', async () => {
    const destination = origin.url('published/clip.ts')
    assert.ok(destination.includes(`:${origin.password}@`))
    const taskId = await submit('LoadAsset', { SourceAssetUrl: pathToFileURL(clip).href, DestinationAsset: destination })
    const answer = await finalStatus(taskId)
    assert.equal(valueOf(answer, 'Status'), 'SUCCESS', answer.body)
    assert.match(answer.body, new RegExp(`<(?:\\w+:)?DestinationAsset>${escapeXml(destination).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</`))
    assert.equal(readFileSync(join(origin.root, 'published/clip.ts'), 'utf8'), 'clip bytes')
    wfmDestinationAnswers.push(answer)
    // The log line of the success quotes the URL, and the logger redacts it.
    assert.ok(server.output().includes(`"finalDestination":"ftp://${origin.user}:***@${origin.host}:${origin.port}/published/clip.ts"`))
  })

  it('the CLI prints tasks, results and faults without passwords', async () => {
    const failed = await apubi(['load', wrongPasswordUrl('in/clip.ts'), 'Secrets/cli.ts', '--wait', '--interval', '50'])
    assert.equal(failed.code, 1, failed.stderr)
    assert.match(failed.stdout, /^[0-9a-f-]{36}\nFAILED\n$/)
    const failedId = failed.stdout.split('\n')[0]!
    assert.equal((await apubi(['status', failedId])).stdout, 'FAILED\n')

    const published = await apubi(['load', pathToFileURL(clip).href, origin.url('cli/clip.ts'), '--wait', '--interval', '50'])
    assert.equal(published.code, 0, published.stderr)
    const redacted = `ftp://${origin.user}:***@${origin.host}:${origin.port}/cli/clip.ts`
    assert.match(published.stdout, new RegExp(`\\nSUCCESS ${redacted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`))
    const publishedId = published.stdout.split('\n')[0]!
    assert.equal((await apubi(['status', publishedId])).stdout, `SUCCESS ${redacted}\n`)

    const fault = await apubi(['load', `gopher://${origin.user}:${SECRET}@origin.example/x.ts`, 'x.ts'])
    assert.equal(fault.code, 2)
    assert.match(fault.stderr, /Unsupported URL scheme gopher: in gopher:\/\/apubi:\*\*\*@origin\.example\/x\.ts/)
  })

  it('start-up errors name the bad setting without quoting the configuration', async () => {
    const brokenConfig = join(base, 'broken.json')
    writeFileSync(brokenConfig, `{ "credentials": [{ "url": "ftp://origin.example", "user": "u", "password": ${CONFIGURED_PASSWORD} }] }`)
    const attempts: Array<[env: Record<string, string>, expected: RegExp]> = [
      [{ APUBI_CONFIG: brokenConfig }, /Cannot read config file .*broken\.json: not valid JSON/],
      [{ APUBI_SECRET_KEY: `not-a-key-${SECRET}` }, /APUBI_SECRET_KEY \(secretKey\): must be 32 bytes/],
      [{ APUBI_SECRET_KEY: KEY.toString('hex'), APUBI_SECRET_KEY_FILE: join(base, 'key') }, /set APUBI_SECRET_KEY or APUBI_SECRET_KEY_FILE, not both/],
    ]
    for (const [env, expected] of attempts) {
      const dataDir = mkdtempSync(join(base, 'start-'))
      const error = await startServer({ env, dataDir, fileRoot: dataDir }).then(
        async (started) => {
          await started.stop({ keep: true })
          return 'the server started'
        },
        (e: Error) => e.message,
      )
      assert.match(error, expected)
      startErrors.push(error)
    }
  })

  it('the admin API, the dashboard and the metrics show the tasks without their passwords', async () => {
    const get = async (path: string) => {
      const response = await fetch(new URL(path, server.url))
      assert.equal(response.status, 200, path)
      return response.text()
    }
    const list = await get('/admin/api/tasks?limit=200')
    adminOutput.push(list, await get('/admin'))
    const ids = (JSON.parse(list) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)
    assert.ok(ids.length >= 7, `the tasks are listed (${ids.length})`)
    for (const id of ids) adminOutput.push(await get(`/admin/api/tasks/${id}`))
    assert.ok(adminOutput.some((text) => text.includes(`ftp://${origin.user}:***@`)), 'URLs are shown, redacted')
    assert.ok(adminOutput.some((text) => text.includes('a.m3u8?token=***&start=0')), 'a query token is shown redacted')
    metricsOutput = await get('/metrics')
    assert.match(metricsOutput, /apubi_/)
  })

  it('its database files, while it runs and once it stopped, hold the tasks sealed, their dedupe keys as HMACs, and are owner-only', async () => {
    assert.match(server.output(), /"credentialsSealed":true,"msg":"apubi-server listening"/)
    const file = join(server.dataDir, 'apubi.sqlite')
    const filesBytes = () =>
      ['', '-wal', '-shm']
        .filter((suffix) => existsSync(file + suffix))
        .map((suffix) => readFileSync(file + suffix).toString('latin1'))
        .join('')
    // Read while it runs too: the WAL holds every write before a checkpoint folds it into the file.
    const whileRunning = filesBytes()
    await server.stop({ keep: true })
    assert.equal(statSync(file).mode & 0o777, 0o600)
    databaseBytes = whileRunning + filesBytes()
    const db = new Database(file, { readonly: true })
    try {
      const rows = db.prepare('SELECT kind, source, destination, target, final_destination, dedupe_key FROM task').all() as Array<Record<string, string | null>>
      const withPasswords = rows.filter((r) => r['source']?.startsWith('sealed:') || r['target']?.startsWith('sealed:'))
      assert.ok(withPasswords.length >= 6, `tasks with credentials are stored sealed (${withPasswords.length} of ${rows.length})`)
      // The published task: its dedupe key is the HMAC of the request under the key derived from ours.
      const destination = origin.url('published/clip.ts')
      const request = JSON.stringify(['load', pathToFileURL(clip).href, destination, null])
      const published = rows.filter((r) => r['final_destination']?.startsWith('sealed:') && r['dedupe_key'] === createSealer(KEY).digest(request))
      assert.equal(published.length, 1, 'the dedupe key is the keyed digest of the request')
    } finally {
      db.close()
    }
  })

  it('no output holds a password or the key; the WFM destination password only the WFM\'s own answers', async (t) => {
    assert.ok(databaseBytes.length > 0, 'the database was read')
    const never = [SECRET, CONFIGURED_PASSWORD, S3_SECRET_KEY, SOAP_PASSWORD, KEY.toString('hex'), KEY.toString('base64'), KEY.toString('base64url')]
    for (const output of outputs) {
      await t.test(output.name, () => {
        const text = output.read()
        for (const secret of never) {
          const at = text.indexOf(secret)
          assert.equal(at, -1, `${output.name} shows a secret: …${text.slice(Math.max(0, at - 120), at + 60)}…`)
        }
        const wfmAnswers = new Set(wfmDestinationAnswers.map((a) => a.body))
        const visible = output.name === 'SOAP answers and faults' ? answers.filter((a) => !wfmAnswers.has(a.body)).map((a) => a.body).join('\n') : text
        const at = visible.indexOf(origin.password)
        assert.equal(at, -1, `${output.name} shows the WFM's destination password: …${visible.slice(Math.max(0, at - 120), at + 60)}…`)
      })
    }
  })
})
