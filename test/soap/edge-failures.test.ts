import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { createLogger } from '../../src/observability/index.js'
import { createAuthenticator, createSoapEdge, DEFAULT_PARSE_LIMITS, loadServiceDescription } from '../../src/soap/index.js'
import { openSqliteStore, TaskService, type TaskStore } from '../../src/tasks/index.js'
import { createLocationPolicy } from '../../src/transfer/index.js'

const statusRequest = (taskId: string) =>
  `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetTaskStatus xmlns="wfm:APUBI/v1/schemas"><TaskId>${taskId}</TaskId></GetTaskStatus></soap:Body></soap:Envelope>`
const loadRequest = (source: string) =>
  `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><LoadAsset xmlns="wfm:APUBI/v1/schemas"><SourceAssetUrl>${source}</SourceAssetUrl><DestinationAsset>out/a.ts</DestinationAsset></LoadAsset></soap:Body></soap:Envelope>`

/**
 * The SOAP edge alone, over a real SQLite task store, in this process: what it does when something
 * fails after the answer went out, and with a store that must wait for every read (as PostgreSQL).
 */
describe('SOAP edge: failures after the answer, and stores that wait', () => {
  let dir: string
  let store: TaskStore
  let server: Server
  let url: string
  let logged: string[]
  /** The metrics hook throws for this operation, after the answer went out. */
  let failMetricsFor: string | undefined
  /** The store the edge asks: the SQLite store, or the same without its answers that do not wait. */
  let storeAsked: TaskStore

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'apubi-edge-'))
    store = openSqliteStore(join(dir, 'tasks.sqlite'))
    storeAsked = store
    logged = []
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(chunk.toString())
        done()
      },
    })
    const taskService = (asked: TaskStore) =>
      new TaskService({
        store: asked,
        policy: createLocationPolicy([dir]),
        cdnBase: `${pathToFileURL(join(dir, 'cdn')).href}/`,
        maxAttempts: 3,
        now: Date.now,
        onSubmitted: () => {},
        digest: (request) => createHash('sha256').update(request).digest('hex'),
      })
    const edgeFor = (asked: TaskStore) =>
      createSoapEdge({
        path: '/apubi',
        maxBodyBytes: 1 << 20,
        limits: DEFAULT_PARSE_LIMITS,
        description: loadServiceDescription('http://localhost/apubi'),
        tasks: taskService(asked),
        auth: createAuthenticator({ user: undefined, password: undefined, allowedClients: [], windowMs: 300_000, now: Date.now }),
        logger: createLogger('info', destination),
        onRequest: (operation) => {
          if (operation === failMetricsFor) throw new Error(`metrics broke on ${operation}`)
        },
      })
    const edges = new Map<TaskStore, ReturnType<typeof createSoapEdge>>()
    server = createServer((req, res) => {
      if (!edges.has(storeAsked)) edges.set(storeAsked, edgeFor(storeAsked))
      if (!edges.get(storeAsked)!(req, res)) res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/apubi`
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const post = async (body: string): Promise<{ status: number; text: string }> => {
    const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8' }, body })
    return { status: response.status, text: await response.text() }
  }
  /** Posts, ignoring whether the answer arrived before its connection was closed. */
  const postRegardless = (body: string) => post(body).catch(() => undefined)

  const newTask = async (): Promise<string> => {
    failMetricsFor = undefined
    const accepted = await post(loadRequest(pathToFileURL(join(dir, 'source.ts')).href))
    assert.equal(accepted.status, 200, accepted.text)
    return /<ns:TaskId>([^<]+)<\/ns:TaskId>/.exec(accepted.text)![1]!
  }

  for (const operation of ['GetTaskStatus', 'LoadAsset']) {
    it(`a failure after a ${operation} answer is logged, closes that connection only, and the server goes on answering`, async () => {
      const taskId = await newTask()
      failMetricsFor = operation
      logged.length = 0
      await postRegardless(operation === 'GetTaskStatus' ? statusRequest(taskId) : loadRequest(pathToFileURL(join(dir, 'other.ts')).href))
      const failure = logged.map((line) => JSON.parse(line) as { msg: string; err?: { message: string } }).find((line) => line.msg === 'request failed')
      assert.equal(failure?.err?.message, `metrics broke on ${operation}`)
      failMetricsFor = undefined
      const next = await post(statusRequest(taskId))
      assert.equal(next.status, 200)
      assert.match(next.text, /<ns:Status>IN_PROGRESS<\/ns:Status>/)
    })
  }

  it('answers GetTaskStatus with the same bytes from a store that must wait for every read', async () => {
    const taskId = await newTask()
    const known = await post(statusRequest(taskId))
    const unknown = await post(statusRequest('no-such-task'))
    // The same store, without statusNow: every read goes through the promise, as with PostgreSQL.
    storeAsked = new Proxy(store, {
      get: (target, key) => {
        if (key === 'statusNow') return undefined
        const value: unknown = Reflect.get(target, key)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    try {
      assert.deepEqual(await post(statusRequest(taskId)), known)
      assert.deepEqual(await post(statusRequest('no-such-task')), unknown)
      assert.equal(unknown.status, 500)
      assert.match(unknown.text, /Task Id does not exist/)
    } finally {
      storeAsked = store
    }
  })
})
