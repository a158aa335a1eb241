import type { IncomingMessage, ServerResponse } from 'node:http'
import { PublishError } from '../errors.js'
import type { Instance, Logger } from '../observability/index.js'
import type { BulkResult, OperatorService, TaskQuery } from '../tasks/index.js'
import { requireOperator, type AdminAccess, type AdminRole } from './access.js'
import { BULK_LIMITS, parseListQuery } from './list-query.js'
import { sendJson } from './respond.js'
import { overviewView, taskDetailView, taskView, type Readiness } from './views.js'

export interface AdminApiOptions {
  readonly operator: OperatorService
  readonly access: AdminAccess
  readonly logger: Logger
  readonly now: () => number
  /** The OpenAPI description, served as it is. */
  readonly openapi: string
  /** This process, as the dashboard's header names it. */
  readonly instance: Instance
  /** The checks of /readyz. */
  readonly readiness: () => Promise<Readiness>
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

/** Every route of the admin API; assets/openapi.json describes the same (a test checks it). */
export const ROUTES: readonly Route[] = [
  {
    method: 'GET',
    path: '/tasks',
    async handle({ res, query }, { operator, now }) {
      const listQuery = parseListQuery(query)
      const at = now()
      const page = await operator.list({ ...listQuery, now: at })
      sendJson(res, 200, { tasks: page.tasks.map((task) => taskView(task, at)), total: page.total, limit: listQuery.limit, offset: listQuery.offset })
    },
  },
  bulkRoute('cancel', (operator, query) => operator.cancelMatching(query), 'tasks cancelled in bulk by operator'),
  bulkRoute('rerun', (operator, query) => operator.rerunMatching(query), 'tasks re-run in bulk by operator'),
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
    path: '/overview',
    async handle({ res, query }, { operator, now, instance, readiness }) {
      const day = query.get('day')
      const dayStart = day && /^\d+$/.test(day) ? Number(day) : undefined
      const [overview, checks] = await Promise.all([operator.overview(dayStart), readiness().catch(() => ({ readiness: false }))])
      sendJson(res, 200, overviewView(overview, now(), instance, checks))
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

/** `POST /bulk/<action>`: an action on every task of the view the listing's filters make (up to its limit). */
function bulkRoute(action: string, act: (operator: OperatorService, query: TaskQuery) => Promise<BulkResult>, message: string): Route {
  return {
    method: 'POST',
    path: `/bulk/${action}`,
    operator: true,
    async handle({ res, query, role }, { operator, logger }) {
      const result = await act(operator, parseListQuery(query, BULK_LIMITS))
      logger.info({ role, view: query.toString(), done: result.done.length, refused: result.refused.length }, message)
      sendJson(res, 200, result)
    },
  }
}

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
