// APUBI servers that do not answer as the WFM expects, for `apubi check` to catch: a proxy in front
// of our server that rewrites its answers, and a server built on the npm `soap` package from our
// WSDL, which behaves as many vendors' servers do.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { listen } from 'soap'

export interface RunningServer {
  /** http://127.0.0.1:<port>/apubi */
  readonly url: string
  close(): Promise<void>
}

/** What the proxy turns an answer into: its HTTP status and body, knowing the request's body. */
export type Rewrite = (answer: { status: number; body: string }, requestBody: string) => { status: number; body: string }

/** An HTTP proxy to `target` (an APUBI endpoint URL) that passes every answer through `rewrite`. */
export async function startRewritingProxy(target: string, rewrite: Rewrite): Promise<RunningServer> {
  const upstream = new URL(target)
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const requestBody = Buffer.concat(chunks)
      const headers = { ...req.headers, host: upstream.host, 'content-length': String(requestBody.length) }
      const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
        const parts: Buffer[] = []
        answer.on('data', (c: Buffer) => parts.push(c))
        answer.on('end', () => {
          const changed = rewrite({ status: answer.statusCode ?? 502, body: Buffer.concat(parts).toString('utf8') }, requestBody.toString('utf8'))
          res.writeHead(changed.status, { 'Content-Type': answer.headers['content-type'] ?? 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(changed.body) })
          res.end(changed.body)
        })
      })
      forwarded.on('error', () => res.writeHead(502).end())
      forwarded.end(requestBody)
    })
  })
  return listening(server, upstream.pathname)
}

/**
 * APUBI on the npm `soap` package's server, from our WSDL and XSD: tasks in memory, each SUCCESS at
 * its first poll; an unknown TaskId throws the documented fault, ExceptionWS detail and all. The
 * package sends it with HTTP 200 unless told otherwise, as many vendors' servers do.
 */
export async function startSoapPackageServer(): Promise<RunningServer> {
  const wsdl = readFileSync(new URL('../../src/soap/wsdl/apubi.wsdl', import.meta.url), 'utf8')
  const tasks = new Map<string, string>()
  const accept = (destination: string) => {
    const taskId = randomUUID()
    tasks.set(taskId, destination.trim())
    return { TaskId: taskId }
  }
  const port = {
    LoadAsset: (args: { DestinationAsset: string }) => accept(args.DestinationAsset),
    PurgeAsset: (args: { DestinationAsset: string }) => accept(args.DestinationAsset),
    GetTaskStatus: (args: { TaskId: string }) => {
      const destination = tasks.get(String(args.TaskId).trim())
      if (destination === undefined) {
        throw { Fault: { faultcode: 'soap:Server', faultstring: 'Task Id does not exist', detail: { ExceptionWS: { message: 'Task Id does not exist' } } } }
      }
      return { Status: 'SUCCESS', DestinationAsset: destination }
    },
  }
  const server = createServer()
  const running = await listening(server, '/apubi')
  listen(server, { path: '/apubi', services: { APUBIService: { APUBIPort: port } }, xml: wsdl, uri: new URL('../../src/soap/wsdl/apubi.wsdl', import.meta.url).pathname })
  return running
}

async function listening(server: Server, path: string): Promise<RunningServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    close: () => new Promise((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
