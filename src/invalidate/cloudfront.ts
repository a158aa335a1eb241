import { Agent as HttpsAgent } from 'node:https'
import { rootCertificates } from 'node:tls'
import { CloudFrontClient, CreateInvalidationCommand, CloudFrontServiceException } from '@aws-sdk/client-cloudfront'
import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'
import type { OutboundOptions } from '../outbound/index.js'
import { listed, shownAnswer } from './answer.js'
import type { InvalidationProvider } from './types.js'

export interface CloudFrontOptions {
  readonly distributionId: string
  /** Absent: the SDK's own chain (environment, profile, instance role). */
  readonly accessKeyId?: string
  readonly secretAccessKey?: string
  readonly region: string
  /** The API's address: AWS's unless given (a contract test's local endpoint). */
  readonly endpoint?: string
}

/** Where CreateInvalidation goes without an `endpoint` (invalidator.ts names it too, for the start-up check). */
const AWS_ENDPOINT = 'https://cloudfront.amazonaws.com'

/** CloudFront keeps at most 3,000 paths per invalidation in progress; a wildcard counts as one. */
const MAX_PATHS = 3_000

/**
 * CloudFront CreateInvalidation through the AWS SDK's client. Paths are those of the public URLs
 * (the distribution serves the public host); a prefix becomes `/dir/*`. The caller reference is the
 * task and attempt, so a request the SDK repeats is not a second invalidation.
 */
export function createCloudFrontProvider(options: CloudFrontOptions, outbound: OutboundOptions): InvalidationProvider {
  const endpoint = options.endpoint ?? AWS_ENDPOINT
  const lookup = outbound.policy.lookupFor(new URL(endpoint))
  const client = new CloudFrontClient({
    region: options.region,
    ...(options.endpoint && { endpoint: options.endpoint }),
    ...(options.accessKeyId && options.secretAccessKey && { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }),
    maxAttempts: 1, // the task retries, and records each attempt
    requestHandler: {
      connectionTimeout: outbound.timeoutMs,
      socketTimeout: outbound.timeoutMs,
      httpsAgent: new HttpsAgent({ keepAlive: true, ...(lookup && { lookup }), ...(outbound.tlsCa && { ca: [...rootCertificates, outbound.tlsCa] }) }),
    },
  })
  const request = `POST ${redact(new URL(`/2020-05-31/distribution/${encodeURIComponent(options.distributionId)}/invalidation`, endpoint).href)}`
  return {
    type: 'cloudfront',
    byPrefix: true,
    async invalidate(what, record, signal) {
      const paths = [...what.prefixes.map((p) => `${new URL(p).pathname}*`), ...what.urls.map((u) => new URL(u).pathname)]
      for (let i = 0; i < paths.length; i += MAX_PATHS) {
        const batch = paths.slice(i, i + MAX_PATHS)
        outbound.policy.checkUrl(endpoint)
        try {
          const answer = await client.send(
            new CreateInvalidationCommand({
              DistributionId: options.distributionId,
              InvalidationBatch: { CallerReference: `${what.reference}-${i / MAX_PATHS}`, Paths: { Quantity: batch.length, Items: batch } },
            }),
            { abortSignal: signal },
          )
          const { Id, Status } = answer.Invalidation ?? {}
          record({ provider: 'cloudfront', request, subject: listed(batch), status: answer.$metadata.httpStatusCode ?? 201, answer: `Invalidation ${Id ?? '?'} ${Status ?? ''}`.trim(), ok: true })
        } catch (e) {
          const error = translate(e, request)
          record({ provider: 'cloudfront', request, subject: listed(batch), ...(statusOf(e) !== undefined && { status: statusOf(e)! }), answer: shownAnswer(error.message), ok: false })
          throw error
        }
      }
    },
  }
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
}

/** The SDK's errors as ours: throttling and 5xx may pass, other refusals will not, no answer is unreachable. */
function translate(e: unknown, request: string): PublishError {
  if (e instanceof PublishError) return e
  const status = statusOf(e)
  if (e instanceof CloudFrontServiceException && status !== undefined) {
    const transient = status === 429 || status >= 500 || e.name === 'Throttling' || e.name === 'TooManyInvalidationsInProgress'
    return new PublishError(transient ? 'ERR_INVALIDATION_UNAVAILABLE' : 'ERR_INVALIDATION', `${request} answered ${status} ${e.name}: ${shownAnswer(e.message)}`, { cause: e })
  }
  return new PublishError('ERR_UNREACHABLE', `${request}: ${shownAnswer((e as Error).message ?? String(e))}`, { cause: e })
}
