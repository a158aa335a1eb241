import { randomUUID } from 'node:crypto'
import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'
import { sendOutbound, type OutboundOptions } from '../outbound/index.js'
import { listed, refusal, shownAnswer } from './answer.js'
import { edgeGridAuthorization, edgeGridTimestamp, type EdgeGridCredentials } from './edgegrid.js'
import type { InvalidationProvider } from './types.js'

export interface AkamaiOptions extends EdgeGridCredentials {
  /** The API client's host, `https://akab-….purge.akamaiapis.net` (its `.edgerc` `host`). */
  readonly host: string
  readonly network: 'production' | 'staging'
  /** invalidate: edges revalidate with the origin (cheap, the usual); delete: edges drop the objects. */
  readonly action: 'invalidate' | 'delete'
}

/** Fast Purge takes at most 50,000 bytes of body a request: URLs are sent in batches below that. */
const MAX_BODY_BYTES = 45_000

/**
 * Akamai Fast Purge (CCU v3) by URL: POST /ccu/v3/{action}/url/{network} with `{"objects": [...]}`,
 * EdgeGrid-signed. Fast Purge has no prefixes: a purged directory is named file by file.
 */
export function createAkamaiProvider(options: AkamaiOptions, outbound: OutboundOptions, clock: { now: () => number; nonce?: () => string }): InvalidationProvider {
  const endpoint = new URL(`/ccu/v3/${options.action}/url/${options.network}`, options.host).href
  return {
    type: 'akamai',
    byPrefix: false,
    async invalidate(what, record, signal) {
      for (const objects of batches(what.urls)) {
        const body = JSON.stringify({ objects })
        const headers = { 'Content-Type': 'application/json', Accept: 'application/json' }
        const authorization = edgeGridAuthorization({ method: 'POST', url: endpoint, body }, options, edgeGridTimestamp(clock.now()), (clock.nonce ?? randomUUID)())
        const request = `POST ${redact(endpoint)}`
        let answer
        try {
          answer = await sendOutbound({ method: 'POST', url: endpoint, headers: { ...headers, Authorization: authorization }, body, signal }, outbound)
        } catch (e) {
          const error = e instanceof PublishError ? e : new PublishError('ERR_UNREACHABLE', `${request}: ${(e as Error).message}`, { cause: e })
          record({ provider: 'akamai', request, subject: listed(objects), answer: shownAnswer(error.message), ok: false })
          throw error
        }
        const ok = answer.status >= 200 && answer.status < 300
        record({ provider: 'akamai', request, subject: listed(objects), status: answer.status, answer: shownAnswer(answer.text), ok })
        if (!ok) throw refusal(request, answer.status, answer.text)
      }
    },
  }
}

/** The URLs in groups whose JSON body stays under MAX_BODY_BYTES. */
function batches(urls: readonly string[]): string[][] {
  const groups: string[][] = []
  let current: string[] = []
  let size = 0
  for (const url of urls) {
    const cost = Buffer.byteLength(JSON.stringify(url)) + 1
    if (current.length > 0 && size + cost > MAX_BODY_BYTES) {
      groups.push(current)
      current = []
      size = 0
    }
    current.push(url)
    size += cost
  }
  if (current.length > 0) groups.push(current)
  return groups
}
