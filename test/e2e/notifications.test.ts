// Signed task notifications, end to end: receivers that verify each signature; a server killed
// between a task's end and the notification's delivery delivers it after restart, once per
// receiver; two instances on one PostgreSQL still deliver each once; operators list and resend.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { freePort, startServer, type TestServer } from '../servers/apubi-server.js'
import { startPostgres } from '../servers/postgres.js'
import { startWebhookReceiver, type WebhookReceiver } from '../servers/webhook-receiver.js'
import { eventually } from './helpers.js'

const SECRETS = { mam: 'mam-secret-0123456789abcdef', chat: 'whsec_' + Buffer.from('chat-secret-bytes-0123456789').toString('base64') }
const cleanup: Array<() => Promise<unknown> | void> = []
after(async () => {
  for (const step of cleanup.reverse()) await step()
})

/** A config file naming two receivers; `mam` hears every event, `chat` only ends. */
function writeConfig(dir: string, urls: { mam: string; chat: string }): string {
  const file = join(dir, 'config.json')
  writeFileSync(
    file,
    JSON.stringify({
      webhooks: [
        { name: 'mam', url: urls.mam, secret: SECRETS.mam, events: ['start', 'retry', 'end'] },
        { name: 'chat', url: urls.chat, secret: SECRETS.chat },
      ],
    }),
  )
  return file
}

const adminUrl = (server: TestServer, path: string) => `${server.url.replace(/\/apubi$/, '')}/admin/api${path}`
const endsOf = (receiver: WebhookReceiver, taskId: string) => receiver.accepted.filter((r) => r.document.taskId === taskId && r.document.type === 'task.end')

describe('signed notifications', () => {
  it('a notification the server could not deliver before it was killed arrives after restart, once per receiver', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apubi-notify-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const files = join(dir, 'files')
    mkdirSync(files)
    const source = join(files, 'movie.ts')
    writeFileSync(source, 'a movie')
    // The receivers are down while the task runs and ends: nothing listens on their ports yet.
    const ports = { mam: await freePort(), chat: await freePort() }
    const config = writeConfig(dir, { mam: `http://127.0.0.1:${ports.mam}/hooks/apubi?token=receiver-token-123`, chat: `http://127.0.0.1:${ports.chat}/hooks/apubi?token=receiver-token-123` })
    const env = { APUBI_CONFIG: config, APUBI_NOTIFY_MAX_ATTEMPTS: '100', APUBI_RETRY_MAX_MS: '500' }
    const first = await startServer({ dataDir: join(dir, 'data'), fileRoot: files, env })
    cleanup.push(() => first.stop({ keep: true }))
    const taskId = await new ApubiClient(first.url).loadAsset(pathToFileURL(source).href, 'Notify/movie.ts')
    assert.equal((await new ApubiClient(first.url).waitFor(taskId, 50)).status, 'SUCCESS')
    // Ended, its notifications pending: tried and refused at least once.
    await eventually(async () => {
      const page = (await (await fetch(adminUrl(first, `/notifications?taskId=${taskId}&state=pending`))).json()) as { notifications: Array<{ attempts: number; event: string; receiver: string }> }
      const end = page.notifications.filter((n) => n.event === 'end')
      return end.length === 2 && end.every((n) => n.attempts >= 1) ? true : undefined
    })
    await first.kill()

    const mam = await startWebhookReceiver(SECRETS.mam, ports.mam)
    const chat = await startWebhookReceiver(SECRETS.chat, ports.chat)
    cleanup.push(() => mam.close(), () => chat.close())
    const second = await startServer({ dataDir: join(dir, 'data'), fileRoot: files, env })
    cleanup.push(() => second.stop({ keep: true }))
    await eventually(() => (endsOf(mam, taskId).length >= 1 && endsOf(chat, taskId).length >= 1 ? true : undefined))
    // Give a duplicate every chance to show up: a few more rounds of the notifier.
    await new Promise((r) => setTimeout(r, 1_000))
    assert.equal(endsOf(mam, taskId).length, 1)
    assert.equal(endsOf(chat, taskId).length, 1)
    assert.equal(mam.refused + chat.refused, 0)
    assert.equal(mam.accepted.filter((r) => r.document.type === 'task.start' && r.document.taskId === taskId).length, 1, 'mam hears the start too')
    assert.equal(chat.accepted.filter((r) => r.document.type !== 'task.end').length, 0, 'chat hears only ends')

    const { document } = endsOf(chat, taskId)[0]!
    assert.deepEqual(
      { type: document.type, state: document.state, kind: document['kind'], destination: document['destination'], files: document.files },
      { type: 'task.end', state: 'SUCCESS', kind: 'load', destination: 'Notify/movie.ts', files: [{ path: 'movie.ts', size: 7, md5: createHash('md5').update('a movie').digest('hex'), sha256: createHash('sha256').update('a movie').digest('hex'), verifiedBy: 'size' }] },
    )
    assert.ok((document['timings'] as { finishedAt?: string }).finishedAt)

    // Operators see them delivered, and can have one sent again.
    const page = (await (await fetch(adminUrl(second, `/notifications?taskId=${taskId}&state=delivered`))).json()) as { notifications: Array<{ id: string; receiver: string; event: string }> }
    const chatEnd = page.notifications.find((n) => n.receiver === 'chat' && n.event === 'end')!
    const resent = await fetch(adminUrl(second, `/notifications/${chatEnd.id}/resend`), { method: 'POST' })
    assert.equal(resent.status, 200)
    await eventually(() => (endsOf(chat, taskId).length === 2 ? true : undefined))
    assert.equal(endsOf(chat, taskId)[1]!.id, chatEnd.id, 'a resend carries the same webhook-id')
    for (const server of [first, second]) assert.doesNotMatch(server.output(), /receiver-token-123|mam-secret/)
  })

  it('a webhook or cache URL the location policy denies stops start-up, naming it without its secrets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apubi-notify-policy-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const config = join(dir, 'config.json')
    writeFileSync(
      config,
      JSON.stringify({
        webhooks: [{ name: 'metadata', url: 'http://169.254.169.254/latest?token=receiver-token-123', secret: SECRETS.mam }],
        invalidation: [{ base: 'file:///srv/cdn/', publicUrl: 'https://cdn.example.com/', provider: { type: 'http', caches: ['http://cache.internal.test:6081/'] } }],
      }),
    )
    const env = { APUBI_CONFIG: config, APUBI_DENIED_HOSTS: '*.internal.test' }
    await assert.rejects(startServer({ env }), (e: Error) => {
      assert.match(e.message, /ERR_CONFIG_INVALID|Invalid configuration/)
      assert.match(e.message, /http:\/\/169\.254\.169\.254\/latest is not allowed/)
      assert.match(e.message, /cache\.internal\.test:6081\/ is not allowed/)
      assert.doesNotMatch(e.message, /receiver-token-123|mam-secret/)
      return true
    })
  })

  it('two instances on one PostgreSQL deliver each notification once per receiver', async () => {
    const postgres = await startPostgres()
    cleanup.push(() => postgres.stop())
    const databaseUrl = await postgres.createDatabase('notify')
    const dir = mkdtempSync(join(tmpdir(), 'apubi-notify-pg-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const files = join(dir, 'files')
    mkdirSync(files)
    const mam = await startWebhookReceiver(SECRETS.mam)
    const chat = await startWebhookReceiver(SECRETS.chat)
    cleanup.push(() => mam.close(), () => chat.close())
    const env = { APUBI_CONFIG: writeConfig(dir, { mam: mam.url, chat: chat.url }), APUBI_DATABASE_URL: databaseUrl }
    const instances = await Promise.all([0, 1].map(() => startServer({ env, fileRoot: files })))
    for (const instance of instances) cleanup.push(() => instance.stop())
    const taskIds: string[] = []
    for (let i = 0; i < 6; i++) {
      const source = join(files, `clip-${i}.ts`)
      writeFileSync(source, `clip ${i}`)
      taskIds.push(await new ApubiClient(instances[i % 2]!.url).loadAsset(pathToFileURL(source).href, pathToFileURL(join(files, 'published', `clip-${i}.ts`)).href))
    }
    for (const id of taskIds) assert.equal((await new ApubiClient(instances[0]!.url).waitFor(id, 50)).status, 'SUCCESS')
    await eventually(() => (taskIds.every((id) => endsOf(mam, id).length > 0 && endsOf(chat, id).length > 0) ? true : undefined))
    await new Promise((r) => setTimeout(r, 1_000))
    for (const id of taskIds) {
      assert.equal(endsOf(mam, id).length, 1, `mam: end of ${id}`)
      assert.equal(endsOf(chat, id).length, 1, `chat: end of ${id}`)
      assert.equal(mam.accepted.filter((r) => r.document.taskId === id && r.document.type === 'task.start').length, 1, `mam: start of ${id}`)
    }
    assert.equal(mam.refused + chat.refused, 0)
  })
})
