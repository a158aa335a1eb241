import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isPublishError, type PublishError } from '../errors.js'
import type { Instance, Logger } from '../observability/index.js'
import type { OperatorService } from '../tasks/index.js'
import type { AdminAccess } from './access.js'
import { handleApi, type BandwidthControl } from './api.js'
import { sendError } from './respond.js'

export interface AdminEdgeOptions {
  readonly operator: OperatorService
  readonly access: AdminAccess
  readonly logger: Logger
  readonly now: () => number
  /** This process, as the dashboard's header names it. */
  readonly instance: Instance
  /** The checks of /readyz, shown in the dashboard's header. */
  readonly readiness: () => Promise<Record<string, boolean>>
  /** The bandwidth caps, shown in the overview and changeable by operators. */
  readonly bandwidth?: BandwidthControl
}

export const ADMIN_PATH = '/admin'
const API_PATH = '/admin/api'

/**
 * The page is one file and its code another, both served from here: nothing is fetched from elsewhere,
 * and the policy says so to the browser. Styles are inline in the page.
 */
const PAGE_HEADERS = {
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

/** The dashboard, its script and the API description, read once at start (dist/ has copies: copy-assets). */
function loadAssets() {
  const read = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8')
  return { page: read('dashboard.html'), script: read('dashboard.js'), openapi: read('openapi.json') }
}

/**
 * The admin interface: `/admin` (the dashboard), `/admin/dashboard.js`, and the JSON API below
 * `/admin/api`. Answers false for any other path.
 */
export function createAdminEdge(options: AdminEdgeOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const assets = loadAssets()
  const apiOptions = { ...options, openapi: assets.openapi }
  return async (req, res) => {
    const target = req.url ?? '/'
    const queryAt = target.indexOf('?')
    const path = queryAt < 0 ? target : target.slice(0, queryAt)
    if (path !== ADMIN_PATH && !path.startsWith(`${ADMIN_PATH}/`)) return false
    try {
      if (path === API_PATH || path.startsWith(`${API_PATH}/`)) {
        const query = new URLSearchParams(queryAt < 0 ? '' : target.slice(queryAt + 1))
        await handleApi(req, res, path.slice(API_PATH.length), query, apiOptions)
      } else {
        serveAsset(req, res, path, assets, options.access)
      }
    } catch (e) {
      // The path only: the page's query may carry a token.
      if (isRefusal(e)) options.logger.warn({ path, client: req.socket.remoteAddress, code: e.code, reason: e.message }, 'admin request refused')
      sendError(res, e, options.logger)
    }
    return true
  }
}

function serveAsset(req: IncomingMessage, res: ServerResponse, path: string, assets: ReturnType<typeof loadAssets>, access: AdminAccess): void {
  access.checkReachable(req)
  const asset =
    path === ADMIN_PATH || path === `${ADMIN_PATH}/`
      ? { type: 'text/html; charset=utf-8', body: assets.page }
      : path === `${ADMIN_PATH}/dashboard.js`
        ? { type: 'text/javascript; charset=utf-8', body: assets.script }
        : undefined
  if (!asset) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Not found; the dashboard is ${ADMIN_PATH}\n`)
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('Use GET\n')
    return
  }
  res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': asset.type, 'Content-Length': String(Buffer.byteLength(asset.body)) })
  res.end(req.method === 'HEAD' ? undefined : asset.body)
}

/** A request refused for who sent it: worth a warning, unlike a bad filter or a finished task. */
function isRefusal(e: unknown): e is PublishError {
  return isPublishError(e, 'ERR_UNAUTHENTICATED') || isPublishError(e, 'ERR_FORBIDDEN')
}

/**
 * The admin interface's rule for another path (/metrics): any role may read. When refused, the guard
 * has answered (401 or 403, as the API does) and returns false.
 */
export function adminGuard(access: AdminAccess, logger: Logger): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    try {
      access.roleOf(req)
      return true
    } catch (e) {
      if (isRefusal(e)) logger.warn({ path: (req.url ?? '').split('?')[0], client: req.socket.remoteAddress, code: e.code, reason: e.message }, 'request refused')
      sendError(res, e, logger)
      return false
    }
  }
}
