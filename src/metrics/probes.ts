import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../observability/index.js'
import type { Metrics } from './metrics.js'

export interface ProbeEdgeOptions {
  readonly metrics: Metrics
  /** Each check by name, true when it passes: /readyz answers 200 only when all do. */
  readonly readiness: () => Promise<Record<string, boolean>>
  /**
   * Whether the client may read /metrics; when not, it has answered the request itself. Health and
   * readiness are open to all: orchestrators probe without credentials, and they tell only up or down.
   */
  readonly allowMetrics: (req: IncomingMessage, res: ServerResponse) => boolean
  readonly logger: Logger
}

/** `/metrics` (Prometheus text format), `/healthz` (the process answers), `/readyz`; false for other paths. */
export function createProbeEdge(options: ProbeEdgeOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { metrics, readiness, allowMetrics, logger } = options
  return async (req, res) => {
    const target = req.url ?? '/'
    const queryAt = target.indexOf('?')
    const path = queryAt < 0 ? target : target.slice(0, queryAt)
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('Use GET\n')
      return true
    }
    if (path === '/healthz') {
      send(res, 200, 'application/json; charset=utf-8', JSON.stringify({ status: 'ok' }))
    } else if (path === '/readyz') {
      const checks = await readiness().catch((e: unknown) => {
        logger.error({ err: e }, 'readiness check failed')
        return { checks: false }
      })
      const ready = Object.values(checks).every(Boolean)
      send(res, ready ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify({ status: ready ? 'ready' : 'not ready', checks }))
    } else if (allowMetrics(req, res)) {
      try {
        send(res, 200, metrics.contentType, await metrics.render())
      } catch (e) {
        logger.error({ err: e }, 'rendering metrics failed')
        send(res, 500, 'text/plain; charset=utf-8', 'Metrics are not available; see the server log\n')
      }
    }
    return true
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': String(Buffer.byteLength(body)) })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

/**
 * Before the task store is open (the database may still be coming up): the process is alive, not
 * ready, and every other request is asked to come back later.
 */
export function answerWhileStarting(req: IncomingMessage, res: ServerResponse): void {
  const target = req.url ?? '/'
  const queryAt = target.indexOf('?')
  const path = queryAt < 0 ? target : target.slice(0, queryAt)
  if (path === '/healthz') send(res, 200, 'application/json; charset=utf-8', JSON.stringify({ status: 'ok' }))
  else if (path === '/readyz') send(res, 503, 'application/json; charset=utf-8', JSON.stringify({ status: 'not ready', checks: { database: false } }))
  else {
    res.setHeader('Retry-After', '5')
    send(res, 503, 'text/plain; charset=utf-8', 'Starting: waiting for the database\n')
  }
}
