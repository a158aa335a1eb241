// A webhook receiver as an asset-management system would run one: it verifies each notification's
// signature (Standard Webhooks headers) before accepting it, and keeps what it accepted.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { verifySignature } from '../../src/notify/index.js'

export interface Received {
  readonly id: string
  readonly document: { type: string; taskId: string; state: string; files: Array<{ path: string; size: number; sha256?: string }>; [key: string]: unknown }
}

export interface WebhookReceiver {
  readonly url: string
  /** Notifications whose signature verified, in arrival order. */
  readonly accepted: Received[]
  /** Requests refused for a bad or missing signature. */
  refused: number
  close(): Promise<void>
}

/** Listens on `port` of 127.0.0.1 (0: any free one) and accepts notifications signed with `secret`. */
export async function startWebhookReceiver(secret: string, port = 0): Promise<WebhookReceiver> {
  const receiver = { accepted: [] as Received[], refused: 0 }
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      const headers = { id: String(req.headers['webhook-id'] ?? ''), timestamp: String(req.headers['webhook-timestamp'] ?? ''), signature: String(req.headers['webhook-signature'] ?? '') }
      if (!verifySignature(headers, body, secret, Math.floor(Date.now() / 1000))) {
        receiver.refused++
        res.writeHead(401).end()
        return
      }
      receiver.accepted.push({ id: headers.id, document: JSON.parse(body) as Received['document'] })
      res.writeHead(204).end()
    })
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const { port: bound } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${bound}/hooks/apubi?token=receiver-token-123`,
    accepted: receiver.accepted,
    get refused() {
      return receiver.refused
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
