import type { ServerResponse } from 'node:http'
import { asPublishError, catalog, type Code } from '../errors.js'
import { redact, type Logger } from '../observability/index.js'

/** The admin API's HTTP status per error code; other Client codes are 400, anything else 500. */
const STATUS: Partial<Record<Code, number>> = {
  ERR_REQUEST_INVALID: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_TASK_NOT_FOUND: 404,
  ERR_TASK_STATE: 409,
}

/** Answers never cached: they change by the second, and some need a token. */
const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' }

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...JSON_HEADERS, 'Content-Length': String(Buffer.byteLength(text)), ...headers }).end(text)
}

/**
 * The one path from an error to an admin answer: `{ "error": { "code", "message" } }`, the message
 * redacted; an unexpected error is logged with its stack and answered as ERR_INTERNAL only.
 */
export function sendError(res: ServerResponse, e: unknown, logger: Logger): void {
  const error = asPublishError(e)
  const status = STATUS[error.code] ?? (catalog[error.code].fault === 'Client' ? 400 : 500)
  if (error.code === 'ERR_INTERNAL') logger.error({ err: e }, 'admin request failed')
  const message = error.code === 'ERR_INTERNAL' ? catalog.ERR_INTERNAL.text : redact(error.message)
  const challenge = status === 401 ? { 'WWW-Authenticate': 'Bearer realm="apubi-admin"' } : undefined
  sendJson(res, status, { error: { code: error.code, message } }, challenge)
}
