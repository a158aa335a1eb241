import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'

/** How much of a provider's answer a task keeps: enough for its error message or request id. */
const ANSWER_SHOWN = 500

/** An answer's text as a task keeps it: on one line, shortened, redacted. */
export function shownAnswer(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return redact(line.length > ANSWER_SHOWN ? `${line.slice(0, ANSWER_SHOWN)}…` : line)
}

/**
 * The error for a provider's non-2xx answer: a 429 or 5xx may pass (retried like a transfer), any
 * other refusal will not.
 */
export function refusal(what: string, status: number, text: string): PublishError {
  const transient = status === 429 || status >= 500
  return new PublishError(transient ? 'ERR_INVALIDATION_UNAVAILABLE' : 'ERR_INVALIDATION', `${what} answered ${status}: ${shownAnswer(text)}`)
}

/** A list for a record: the first few entries and how many more. */
export function listed(items: readonly string[]): string {
  const SHOWN = 20
  return items.length <= SHOWN ? items.join(' ') : `${items.slice(0, SHOWN).join(' ')} … (${items.length} in all)`
}
