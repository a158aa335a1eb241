// autocannon ships no types: only the part of its programmatic API the bench uses.
declare module 'autocannon' {
  interface Histogram {
    readonly average: number
    readonly p50: number
    readonly p99: number
    readonly max: number
  }
  interface Result {
    readonly requests: Histogram & { readonly total: number }
    readonly latency: Histogram
    readonly duration: number
    readonly errors: number
    readonly timeouts: number
    readonly non2xx: number
  }
  interface Options {
    url: string
    method?: string
    headers?: Record<string, string>
    body?: string
    connections?: number
    /** Seconds. */
    duration?: number
    /** A first, unrecorded run with these settings. */
    warmup?: { connections?: number; duration?: number }
    /** Cycled through; `setupRequest` may change each request before it is sent. */
    requests?: Array<{ setupRequest?: (request: { body?: string }) => { body?: string } }>
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
