import type { IncomingMessage, ServerResponse } from 'node:http'
import { PublishError } from '../errors.js'
import type { Logger } from '../observability/index.js'
import type { DeliveryState, OperatorService } from '../tasks/index.js'
import { requireOperator, type AdminAccess, type AdminRole } from './access.js'
import { parseListQuery } from './list-query.js'
import { sendJson } from './respond.js'
import { deliveryView, overviewView, taskDetailView, taskView } from './views.js'

export interface AdminApiOptions {
  readonly operator: OperatorService
  readonly access: AdminAccess
  readonly logger: Logger
  readonly now: () => number
  /** The OpenAPI description, served as it is. */
  readonly openapi: string
}

interface Call {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly role: AdminRole
  readonly query: URLSearchParams
  /** The `{id}` of the route, decoded. */
  readonly id: string
}

interface Route {
  readonly method: 'GET' | 'POST'
  /** Relative to /admin/api; `{id}` stands for one path segment. */
  readonly path: string
  readonly operator?: true
  handle(call: Call, options: AdminApiOptions): Promise<void>
}

const DELIVERY_STATES: ReadonlySet<string> = new Set(['pending', 'delivered', 'failed'])

/** Every route of the admin API; assets/openapi.json describes the same (a test checks it). */
export const ROUTES: readonly Route[] = [
  {
    method: 'GET',
    path: '/tasks',
    async handle({ res, query }, { operator }) {
      const listQuery = parseListQuery(query)
      const page = await operator.list(listQuery)
      sendJson(res, 200, { tasks: page.tasks.map(taskView), total: page.total, limit: listQuery.limit, offset: listQuery.offset })
    },
  },
  {
    method: 'GET',
    path: '/tasks/{id}',
    async handle({ res, id }, { operator, now }) {
      sendJson(res, 200, taskDetailView(await operator.detail(id), now()))
    },
  },
  {
    method: 'POST',
    path: '/tasks/{id}/cancel',
    operator: true,
    async handle({ res, id, role }, { operator, logger, now }) {
      const task = await operator.cancel(id)
      logger.info({ taskId: id, role }, 'task cancelled by operator')
      sendJson(res, 200, taskDetailView(await operator.detail(task.id), now()))
    },
  },
  {
    method: 'POST',
    path: '/tasks/{id}/rerun',
    operator: true,
    async handle({ res, id, role }, { operator, logger }) {
      const result = await operator.rerun(id)
      logger.info({ taskId: id, newTaskId: result.id, created: result.created, role }, 'task re-run by operator')
      sendJson(res, result.created ? 201 : 200, { id: result.id, created: result.created, rerunOf: id })
    },
  },
  {
    method: 'GET',
    path: '/notifications',
    async handle({ res, query }, { operator }) {
      const state = query.get('state') ?? undefined
      if (state !== undefined && !DELIVERY_STATES.has(state)) throw new PublishError('ERR_REQUEST_INVALID', `state must be one of ${[...DELIVERY_STATES].join(', ')}`)
      // Paging as the task listing reads it; its other filters mean nothing here.
      const paging = new URLSearchParams([...query].filter(([name]) => name === 'limit' || name === 'offset'))
      const { limit, offset } = parseListQuery(paging)
      const taskId = query.get('taskId') ?? undefined
      const page = await operator.deliveries({ ...(state && { state: state as DeliveryState }), ...(taskId && { taskId }), limit, offset })
      sendJson(res, 200, { notifications: page.deliveries.map(deliveryView), total: page.total, limit, offset })
    },
  },
  {
    method: 'POST',
    path: '/notifications/{id}/resend',
    operator: true,
    async handle({ res, id, role }, { operator, logger }) {
      const delivery = await operator.resend(id)
      logger.info({ deliveryId: id, taskId: delivery.taskId, receiver: delivery.receiver, role }, 'notification queued again by operator')
      sendJson(res, 200, deliveryView(delivery))
    },
  },
  {
    method: 'GET',
    path: '/overview',
    async handle({ res }, { operator, now }) {
      sendJson(res, 200, overviewView(await operator.overview(), now()))
    },
  },
  {
    method: 'GET',
    path: '/session',
    async handle({ res, role }, { access }) {
      sendJson(res, 200, { role, tokens: access.tokens })
    },
  },
]

/** `/admin/api` + route path as a pattern: `{id}` is one segment of anything but `/`. */
const compiled = ROUTES.map((route) => ({
  route,
  pattern: new RegExp(`^${route.path.replace(/\{id\}/g, '([^/]+)')}$`),
}))

/**
 * Answers one request below /admin/api (`path` is what follows it). Authentication first, then the
 * route; a state-changing request also needs the operator role and must come from our own origin.
 * @throws PublishError, for sendError.
 */
export async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, options: AdminApiOptions): Promise<void> {
  if (path === '/openapi.json' && (req.method === 'GET' || req.method === 'HEAD')) {
    options.access.checkReachable(req)
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-cache' }).end(options.openapi)
    return
  }
  const role = options.access.roleOf(req)
  const matches = compiled.map(({ route, pattern }) => ({ route, match: pattern.exec(path) })).filter((m) => m.match !== null)
  if (matches.length === 0) return refuse(res, 404, `No admin API route ${path}; see /admin/api/openapi.json`)
  const found = matches.find((m) => m.route.method === req.method || (req.method === 'HEAD' && m.route.method === 'GET'))
  if (!found) return refuse(res, 405, `HTTP method ${req.method} is not allowed here`, { Allow: [...new Set(matches.map((m) => m.route.method))].join(', ') })
  const { route, match } = found
  if (route.method === 'POST') {
    checkSameOrigin(req)
    if (route.operator) requireOperator(role)
  }
  let id = ''
  try {
    id = decodeURIComponent(match![1] ?? '')
  } catch {
    throw new PublishError('ERR_REQUEST_INVALID', 'Malformed task id in the path')
  }
  // Nothing reads a body: let it flow so that the connection can be kept.
  req.resume()
  await route.handle({ req, res, role, query, id }, options)
}

function refuse(res: ServerResponse, status: number, message: string, headers?: Record<string, string>): void {
  sendJson(res, status, { error: { code: 'ERR_REQUEST_INVALID', message } }, headers)
}

/**
 * A browser sends Origin with every POST: one from another site is refused, so that a page elsewhere
 * cannot make an operator's browser cancel tasks (without a token configured, loopback alone decides).
 */
function checkSameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin
  if (origin === undefined) return
  let host: string | undefined
  try {
    host = new URL(origin).host
  } catch {
    host = undefined
  }
  if (host === undefined || host !== req.headers.host) {
    throw new PublishError('ERR_FORBIDDEN', 'Cross-site request refused: Origin does not match Host')
  }
}
