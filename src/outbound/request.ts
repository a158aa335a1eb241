import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { rootCertificates } from 'node:tls'
import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'

/**
 * What outbound requests need of the location policy: the URL judged as a source or destination
 * would be, and the addresses its host resolves to judged as the socket connects (the same checks
 * as the backends', passed in by the composition root).
 */
export interface OutboundPolicy {
  /** @throws PublishError ERR_POLICY_DENIED */
  checkUrl(url: string): void
  /** A `lookup` for the socket that resolves through the policy; undefined: the default lookup. */
  lookupFor(url: URL): LookupFunction | undefined
}

export interface OutboundOptions {
  readonly policy: OutboundPolicy
  /** Connect and answer timeout, ms. */
  readonly timeoutMs: number
  /** PEM CA certificates trusted besides Node's bundle. */
  readonly tlsCa?: string
}

export interface OutboundRequest {
  readonly method: string
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
  readonly signal?: AbortSignal
}

export interface OutboundAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** The first ANSWER_TEXT_LIMIT characters of the body: enough to record, never a whole page. */
  readonly text: string
}

/** How much of an answer's body is kept: what a CDN API or a webhook receiver says fits easily. */
const ANSWER_TEXT_LIMIT = 4_096

/**
 * Sends one HTTP(S) request to a URL the policy allows, connecting only to addresses it allowed,
 * never following a redirect (a 3xx is an answer like any other). Any status resolves: the caller
 * decides what it means.
 * @throws PublishError ERR_POLICY_DENIED for a refused URL or address; ERR_UNREACHABLE when no
 *   answer came (refused connection, timeout, TLS failure), message redacted.
 */
export async function sendOutbound(req: OutboundRequest, options: OutboundOptions): Promise<OutboundAnswer> {
  options.policy.checkUrl(req.url)
  const url = new URL(req.url)
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  const body = req.body === undefined ? undefined : Buffer.from(req.body)
  return new Promise<OutboundAnswer>((resolve, reject) => {
    const lookup = options.policy.lookupFor(url)
    const outgoing = send(
      url,
      {
        method: req.method,
        headers: { ...req.headers, ...(body && { 'Content-Length': String(body.length) }) },
        timeout: options.timeoutMs,
        ...(lookup && { lookup }),
        // `ca` replaces Node's bundle: the configured CAs are trusted besides it, not instead.
        ...(options.tlsCa && { ca: [...rootCertificates, options.tlsCa] }),
        ...(req.signal && { signal: req.signal }),
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          if (text.length < ANSWER_TEXT_LIMIT) text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: text.slice(0, ANSWER_TEXT_LIMIT) }))
        res.on('error', (e) => reject(unreachable(req, e)))
      },
    )
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${options.timeoutMs} ms`)))
    outgoing.on('error', (e) => reject(e instanceof PublishError ? e : unreachable(req, e)))
    outgoing.end(body)
  })
}

function unreachable(req: OutboundRequest, cause: Error): PublishError {
  // A refusal by the policy inside the lookup arrives as the socket's error: keep its code.
  if (cause instanceof PublishError) return cause
  const reason = (cause as NodeJS.ErrnoException).code ?? cause.message
  return new PublishError('ERR_UNREACHABLE', `${req.method} ${redact(req.url.replace(/[?#].*$/s, ''))}: ${redact(reason)}`, { cause })
}
