import { PublishError } from '../errors.js'
import { TASK_STATES, type TaskKind, type TaskQuery, type TaskState } from '../tasks/index.js'

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 200
/** Search text longer than this is surely not a path fragment: refused rather than scanned for. */
const MAX_TEXT_LENGTH = 256

const invalid = (parameter: string, why: string) => new PublishError('ERR_REQUEST_INVALID', `Query parameter ${parameter}: ${why}`)

/**
 * The listing's query string as a TaskQuery: `state` (comma-separated), `kind`, `from` and `to`
 * (ISO 8601 or epoch ms; created at or after / before), `q` (text in the locations), `limit`, `offset`.
 * @throws PublishError ERR_REQUEST_INVALID naming the parameter.
 */
export function parseListQuery(params: URLSearchParams): TaskQuery {
  const states = params.get('state')?.split(',').map((s) => s.trim()).filter(Boolean)
  for (const state of states ?? []) {
    if (!(TASK_STATES as readonly string[]).includes(state)) throw invalid('state', `${JSON.stringify(state)} is not one of ${TASK_STATES.join(', ')}`)
  }
  const kind = params.get('kind') || undefined
  if (kind !== undefined && kind !== 'load' && kind !== 'purge') throw invalid('kind', 'must be load or purge')
  const text = params.get('q')?.trim() || undefined
  if (text !== undefined && text.length > MAX_TEXT_LENGTH) throw invalid('q', `longer than ${MAX_TEXT_LENGTH} characters`)
  const createdFrom = time(params, 'from')
  const createdBefore = time(params, 'to')
  return {
    ...(states && states.length > 0 && { states: states as TaskState[] }),
    ...(kind && { kind: kind as TaskKind }),
    ...(createdFrom !== undefined && { createdFrom }),
    ...(createdBefore !== undefined && { createdBefore }),
    ...(text && { text }),
    limit: integer(params, 'limit', DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    offset: integer(params, 'offset', 0, 0, Number.MAX_SAFE_INTEGER),
  }
}

function time(params: URLSearchParams, name: string): number | undefined {
  const value = params.get(name)?.trim()
  if (!value) return undefined
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
  if (!Number.isFinite(ms)) throw invalid(name, 'must be an ISO 8601 date-time or epoch milliseconds')
  return ms
}

function integer(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const value = params.get(name)?.trim()
  if (!value) return fallback
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw invalid(name, `must be an integer from ${min} to ${max}`)
  return Number(value)
}
