import autocannon from 'autocannon'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../src/client/apubi-client.js'
import type { TestServer } from '../test/servers/apubi-server.js'

export const CONNECTIONS = 64
const WARMUP_SECONDS = 2

export interface LoadResult {
  readonly requestsPerSecond: number
  readonly p99Ms: number
}

/**
 * The request as the vendor's sample writes it (whitespace and the stray ns2 declaration included).
 * A different envelope prefix makes a different text meaning the same request.
 */
export function getTaskStatusEnvelope(taskId: string, prefix = 'soap'): string {
  return `<${prefix}:Envelope xmlns:${prefix}="http://schemas.xmlsoap.org/soap/envelope/">
    <${prefix}:Body>
        <GetTaskStatus xmlns="wfm:APUBI/v1/schemas" xmlns:ns2="wfm:/APUBI/v1/schemas">
            <TaskId>${taskId}</TaskId>
        </GetTaskStatus>
    </${prefix}:Body>
</${prefix}:Envelope>`
}

/**
 * Bodies that are each a text the server has not seen (a new envelope prefix every time), so no
 * request is answered from the server's memory of parsed texts: the cost of a first poll.
 */
export function newTextEveryTime(taskId: string): () => string {
  let n = 0
  return () => getTaskStatusEnvelope(taskId, `s${(n++).toString(36)}`)
}

const requestHeaders = { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '"GetTaskStatus"' }

/** Publishes a small file to a relative destination and waits for SUCCESS: a task whose status is final. */
export async function createFinishedTask(server: TestServer): Promise<string> {
  const source = join(server.fileRoot, 'small.txt')
  writeFileSync(source, 'a small asset\n')
  const client = new ApubiClient(server.url)
  const taskId = await client.loadAsset(pathToFileURL(source).href, 'bench/small.txt')
  const { status } = await client.waitFor(taskId, 50)
  if (status !== 'SUCCESS') throw new Error(`the setup task ended ${status}:\n${server.output()}`)
  return taskId
}

/** One GetTaskStatus answer, as bytes: what the bare server must repeat, and a check that it does. */
export async function fetchAnswer(url: string, body: string): Promise<{ contentType: string; bytes: Buffer }> {
  const response = await fetch(url, { method: 'POST', headers: requestHeaders, body })
  const bytes = Buffer.from(await response.arrayBuffer())
  if (response.status !== 200) throw new Error(`GetTaskStatus answered HTTP ${response.status}: ${bytes}`)
  return { contentType: response.headers.get('content-type') ?? '', bytes }
}

/**
 * GetTaskStatus at full speed: 64 keep-alive connections, each sending its next request as soon as
 * the answer arrived, after an unrecorded warm-up so both sides are measured with a warm JIT.
 * @throws when any request failed: a rate of errors is not a rate of answers.
 */
export async function loadGetTaskStatus(url: string, body: string | (() => string), seconds: number): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers: requestHeaders,
    ...(typeof body === 'string' ? { body } : { requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }] }),
    connections: CONNECTIONS,
    duration: seconds,
    warmup: { connections: CONNECTIONS, duration: WARMUP_SECONDS },
  })
  if (result.errors || result.timeouts || result.non2xx || result.requests.total === 0) {
    throw new Error(`load on ${url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx of ${result.requests.total}`)
  }
  return { requestsPerSecond: result.requests.average, p99Ms: result.latency.p99 }
}
