import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'
import { sendOutbound, type OutboundOptions } from '../outbound/index.js'
import { listed, refusal, shownAnswer } from './answer.js'
import type { Invalidation, InvalidationProvider } from './types.js'

export interface HttpCacheOptions {
  /**
   * PURGE forgets one URL (Varnish `return (purge)`, nginx purge modules, Fastly per-URL purge);
   * BAN forgets everything below a prefix (Varnish `ban()` in the VCL).
   */
  readonly method: 'PURGE' | 'BAN'
  /**
   * Where the caches listen (`http://10.0.0.7:6081/`): each request goes there, for the public URL's
   * path, with the public host in `Host`. Absent: to the public URL itself (Fastly).
   */
  readonly caches?: readonly string[]
  /** A header proving the right to purge (Fastly-Key, a shared secret the VCL checks). */
  readonly keyHeader?: { readonly name: string; readonly token: string }
}

/** Sends PURGE or BAN for each URL (BAN: for each prefix too) to each cache, one after the other. */
export function createHttpCacheProvider(options: HttpCacheOptions, outbound: OutboundOptions): InvalidationProvider {
  const byPrefix = options.method === 'BAN'
  return {
    type: 'http',
    byPrefix,
    async invalidate(what: Invalidation, record, signal) {
      const targets = byPrefix ? [...what.prefixes, ...what.urls] : what.urls
      let failure: PublishError | undefined
      for (const publicUrl of targets) {
        const shown = new URL(publicUrl)
        for (const cache of options.caches ?? [shown.origin]) {
          const url = new URL(shown.pathname + shown.search, cache).href
          const request = `${options.method} ${redact(url)}`
          try {
            const answer = await sendOutbound(
              {
                method: options.method,
                url,
                headers: { Host: shown.host, ...(options.keyHeader && { [options.keyHeader.name]: options.keyHeader.token }) },
                signal,
              },
              outbound,
            )
            const ok = answer.status >= 200 && answer.status < 300
            record({ provider: 'http', request, subject: listed([publicUrl]), status: answer.status, answer: shownAnswer(answer.text), ok })
            if (!ok) failure ??= refusal(request, answer.status, answer.text)
          } catch (e) {
            const error = e instanceof PublishError ? e : new PublishError('ERR_UNREACHABLE', `${request}: ${(e as Error).message}`, { cause: e })
            record({ provider: 'http', request, subject: listed([publicUrl]), answer: shownAnswer(error.message), ok: false })
            failure ??= error
          }
        }
      }
      if (failure) throw failure
    },
  }
}
