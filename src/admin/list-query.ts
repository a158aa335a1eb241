import { PublishError } from '../errors.js'
import { OPERATOR_STATES, TASK_SORTS, type OperatorState, type TaskKind, type TaskQuery, type TaskSort } from '../tasks/index.js'

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 200
const PAGE_LIMITS = { fallback: DEFAULT_PAGE_SIZE, max: MAX_PAGE_SIZE }
/** A bulk action acts on the first `limit` tasks of its view: all of them (up to 1000) unless asked. */
export const BULK_LIMITS = { fallback: 1000, max: 1000 }
/** Search text longer than this is surely not a path fragment: refused rather than scanned for. */
const MAX_TEXT_LENGTH = 256

const invalid = (parameter: string, why: string) => new PublishError('ERR_REQUEST_INVALID', `Query parameter ${parameter}: ${why}`)

/**
 * The listing's query string as a TaskQuery: `state` (comma-separated operator states), `kind`, `from`
 * and `to` (ISO 8601 or epoch ms; created at or after / before), `q` (text in the locations, or any part
 * of a TaskId), `sort` and `order`, `limit`, `offset`.
 * @throws PublishError ERR_REQUEST_INVALID naming the parameter.
 */
export function parseListQuery(params: URLSearchParams, limits = PAGE_LIMITS): TaskQuery {
  const states = params.get('state')?.split(',').map((s) => s.trim()).filter(Boolean)
  for (const state of states ?? []) {
    if (!(OPERATOR_STATES as readonly string[]).includes(state)) throw invalid('state', `${JSON.stringify(state)} is not one of ${OPERATOR_STATES.join(', ')}`)
  }
  const sort = params.get('sort') || undefined
  if (sort !== undefined && !(TASK_SORTS as readonly string[]).includes(sort)) throw invalid('sort', `must be one of ${TASK_SORTS.join(', ')}`)
  const order = params.get('order') || undefined
  if (order !== undefined && order !== 'asc' && order !== 'desc') throw invalid('order', 'must be asc or desc')
  const kind = params.get('kind') || undefined
  if (kind !== undefined && kind !== 'load' && kind !== 'purge') throw invalid('kind', 'must be load or purge')
  const text = params.get('q')?.trim() || undefined
  if (text !== undefined && text.length > MAX_TEXT_LENGTH) throw invalid('q', `longer than ${MAX_TEXT_LENGTH} characters`)
  const createdFrom = time(params, 'from')
  const createdBefore = time(params, 'to')
  return {
    ...(states && states.length > 0 && { states: states as OperatorState[] }),
    ...(kind && { kind: kind as TaskKind }),
    ...(createdFrom !== undefined && { createdFrom }),
    ...(createdBefore !== undefined && { createdBefore }),
    ...(text && { text }),
    ...(sort && { sort: sort as TaskSort }),
    ...(order && { order: order as 'asc' | 'desc' }),
    limit: integer(params, 'limit', limits.fallback, 1, limits.max),
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
