import type { IncomingMessage, ServerResponse } from 'node:http'
import { PublishError } from '../errors.js'
import type { Instance, Logger } from '../observability/index.js'
import type { BandwidthChange, BandwidthView, BulkResult, DeliveryState, OperatorService, TaskQuery } from '../tasks/index.js'
import { requireOperator, type AdminAccess, type AdminRole } from './access.js'
import { readJsonBody } from './body.js'
import { BULK_LIMITS, parseListQuery } from './list-query.js'
import { sendJson } from './respond.js'
import { deliveryView, overviewView, taskDetailView, taskView, type Readiness } from './views.js'

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
  /** The bandwidth caps of this instance, to show and change; absent: the server has none to offer. */
  readonly bandwidth?: BandwidthControl
}

/** What the admin API needs of the bandwidth caps (transfer/ Bandwidth; on PostgreSQL, tasks/ SharedBandwidth). */
export interface BandwidthControl {
  view(): BandwidthView
  /** @throws PublishError ERR_REQUEST_INVALID for a timetable that is wrong; then nothing changed. */
  change(change: BandwidthChange): void | Promise<void>
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
  /** The handler reads the request body itself. */
  readonly readsBody?: true
  handle(call: Call, options: AdminApiOptions): Promise<void>
}

const DELIVERY_STATES: ReadonlySet<string> = new Set(['pending', 'delivered', 'failed'])

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
    async handle({ res, query }, { operator, now, instance, readiness, bandwidth }) {
      const day = query.get('day')
      const dayStart = day && /^\d+$/.test(day) ? Number(day) : undefined
      const [overview, checks] = await Promise.all([operator.overview(dayStart), readiness().catch(() => ({ readiness: false }))])
      sendJson(res, 200, { ...overviewView(overview, now(), instance, checks), bandwidth: bandwidth?.view() })
    },
  },
  {
    method: 'GET',
    path: '/bandwidth',
    async handle({ res }, { bandwidth }) {
      sendJson(res, 200, bandwidth?.view() ?? { hosts: {}, instanceShare: 1 })
    },
  },
  {
    method: 'POST',
    path: '/bandwidth',
    operator: true,
    readsBody: true,
    async handle({ req, res, role }, { bandwidth, logger }) {
      const change = parseBandwidthChange(await readJsonBody(req))
      if (!bandwidth) throw new PublishError('ERR_REQUEST_INVALID', 'This server has no bandwidth caps to change')
      await bandwidth.change(change)
      logger.info({ change, role }, 'bandwidth caps changed by operator')
      sendJson(res, 200, bandwidth.view())
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
  // Other routes read no body: let it flow so that the connection can be kept.
  if (!route.readsBody) req.resume()
  await route.handle({ req, res, role, query, id }, options)
}

/**
 * `{ "overall": "08:00,10M 23:00,off" | null, "hosts": { "<host>": "4M" | null } }`: a timetable in
 * place of the configured one, null back to the configuration; what is left out stays as it is.
 * @throws PublishError ERR_REQUEST_INVALID for any other shape.
 */
function parseBandwidthChange(body: unknown): BandwidthChange {
  const invalid = (why: string) => new PublishError('ERR_REQUEST_INVALID', `Bandwidth change: ${why}; expected { "overall": "<timetable>" | null, "hosts": { "<host>": "<timetable>" | null } }`)
  const isTimetable = (v: unknown): v is string | null => v === null || (typeof v === 'string' && v.length <= 1_000)
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('not a JSON object')
  const { overall, hosts, ...rest } = body as Record<string, unknown>
  if (Object.keys(rest).length > 0) throw invalid(`unknown field ${Object.keys(rest)[0]}`)
  if (overall !== undefined && !isTimetable(overall)) throw invalid('overall must be a string or null')
  if (hosts !== undefined && (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts))) throw invalid('hosts must be an object')
  for (const [host, value] of Object.entries(hosts ?? {})) {
    if (!isTimetable(value) || host.length === 0 || host.length > 253) throw invalid(`hosts.${host} must be a string or null`)
  }
  return { ...(overall !== undefined && { overall }), ...(hosts !== undefined && { hosts: hosts as Record<string, string | null> }) }
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
