/** What one base invalidates after a task: exact public URLs, and prefixes that stand for everything below them. */
export interface Invalidation {
  /** Unique to the task attempt: lets an API recognise a request sent twice. */
  readonly reference: string
  readonly urls: readonly string[]
  /** Each ends with `/`; only given to a provider that can invalidate by prefix. */
  readonly prefixes: readonly string[]
}

/** One request to a cache or CDN API and its answer, as the task records it: no secret in it. */
export interface InvalidationCall {
  readonly provider: ProviderType
  /** Method and URL, e.g. `PURGE http://cache:6081/vod/a/master.m3u8`. */
  readonly request: string
  /** What was asked for: the URLs or paths, as sent (truncated for very long lists). */
  readonly subject: string
  /** HTTP status of the answer; undefined when none came. */
  readonly status?: number
  /** The answer's text (or the error), shortened and redacted. */
  readonly answer: string
  readonly ok: boolean
}

export type ProviderType = 'http' | 'cloudfront' | 'akamai'

/**
 * A cache or CDN API that forgets URLs. `invalidate` reports every request it made to `record`,
 * successful or not, then throws the first failure: PublishError ERR_INVALIDATION for a refusal
 * that a retry would not change, ERR_INVALIDATION_UNAVAILABLE or ERR_UNREACHABLE for one it might.
 */
export interface InvalidationProvider {
  readonly type: ProviderType
  /** Prefixes are honoured (Varnish BAN, CloudFront wildcards); otherwise every URL must be named. */
  readonly byPrefix: boolean
  invalidate(what: Invalidation, record: (call: InvalidationCall) => void, signal: AbortSignal): Promise<void>
}
