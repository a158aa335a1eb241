import type { LookupFunction } from 'node:net'
import { checkedLookup, isScheme, type Scheme } from '../backends/index.js'
import { PublishError } from '../errors.js'
import { parseLocation, type LocationPolicy } from './locate.js'

/** The location policy as outbound requests (invalidation, notifications) need it. */
export interface OutboundChecks {
  /** @throws PublishError ERR_POLICY_DENIED, ERR_UNSUPPORTED_SCHEME for anything but http(s) */
  checkUrl(url: string): void
  /** A socket `lookup` that connects only to addresses the policy allows. */
  lookupFor(url: URL): LookupFunction | undefined
}

/**
 * Judges the URLs of CDN APIs, caches and webhook receivers as sources and destinations are judged:
 * the URL by the rules when it is sent, each address its host resolves to as the socket connects.
 */
export function createOutboundChecks(policy: LocationPolicy): OutboundChecks {
  const context = { guard: policy.guard }
  return {
    checkUrl(url) {
      const location = parseLocation(url)
      if (location.endpoint.scheme !== 'http' && location.endpoint.scheme !== 'https') {
        throw new PublishError('ERR_UNSUPPORTED_SCHEME', `Only http and https are sent to: ${location.endpoint.scheme}`)
      }
      policy.check(location)
    },
    lookupFor(url) {
      const scheme = url.protocol.slice(0, -1)
      if (!isScheme(scheme)) return undefined
      return checkedLookup(context, { scheme: scheme as Scheme, port: Number(url.port) || (scheme === 'https' ? 443 : 80) })
    },
  }
}
