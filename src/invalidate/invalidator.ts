import type { OutboundOptions } from '../outbound/index.js'
import { createAkamaiProvider, type AkamaiOptions } from './akamai.js'
import { createCloudFrontProvider, type CloudFrontOptions } from './cloudfront.js'
import { createHttpCacheProvider, type HttpCacheOptions } from './http-cache.js'
import { afterLoad, afterPurge, below } from './plan.js'
import type { InvalidationCall, InvalidationProvider } from './types.js'

/** One destination base with its cache or CDN, as the config file's `invalidation` lists them. */
export interface InvalidationBase {
  /** Targets under this URL (a directory, ending with `/`) are served through the CDN below. */
  readonly base: string
  /** Where the files under `base` are served: `base` + x is served at `publicUrl` + x. */
  readonly publicUrl: string
  /** fail: a failed invalidation fails the task; warn: the task succeeds, the failure is recorded and counted. */
  readonly onFailure: 'fail' | 'warn'
  readonly provider:
    | ({ readonly type: 'http' } & HttpCacheOptions)
    | ({ readonly type: 'cloudfront' } & CloudFrontOptions)
    | ({ readonly type: 'akamai' } & AkamaiOptions)
}

/** The invalidation of one task's target, under the base that holds it. */
export interface TargetInvalidation {
  readonly onFailure: 'fail' | 'warn'
  /** The provider forgets prefixes: a purged directory need not be listed first. */
  readonly byPrefix: boolean
  /** After a load into a target that existed: `files` are the published paths below the target. */
  afterLoad(files: readonly string[], targetIsDirectory: boolean, reference: string, record: (call: InvalidationCall) => void, signal: AbortSignal): Promise<void>
  /** After a purge: `files`, the paths the purged directory held (listed only when `byPrefix` is false). */
  afterPurge(targetIsDirectory: boolean, files: readonly string[], reference: string, record: (call: InvalidationCall) => void, signal: AbortSignal): Promise<void>
}

export interface Invalidator {
  /** The invalidation for a task's target URL; undefined when no base holds it. The longest base wins. */
  forTarget(target: string): TargetInvalidation | undefined
}

export interface InvalidatorOptions {
  readonly outbound: OutboundOptions
  readonly now: () => number
}

/** Builds each base's provider once (its client, its connections) and finds the base of a target. */
export function createInvalidator(bases: readonly InvalidationBase[], options: InvalidatorOptions): Invalidator {
  const built = bases
    .map((base) => ({ base, provider: providerFor(base, options) }))
    .sort((a, b) => b.base.base.length - a.base.base.length)
  return {
    forTarget(target) {
      for (const { base, provider } of built) {
        const rel = below(base.base, target)
        if (rel === undefined) continue
        const publicBase = base.publicUrl.endsWith('/') ? base.publicUrl : `${base.publicUrl}/`
        // A directory target without its trailing slash is still a directory below the base.
        const dirRel = rel === '' || rel.endsWith('/') ? rel : `${rel}/`
        return {
          onFailure: base.onFailure,
          byPrefix: provider.byPrefix,
          afterLoad: (files, isDirectory, reference, record, signal) =>
            provider.invalidate({ reference, urls: afterLoad(publicBase, isDirectory ? dirRel : rel, files, isDirectory), prefixes: [] }, record, signal),
          afterPurge: (isDirectory, files, reference, record, signal) =>
            provider.invalidate({ reference, ...afterPurge(publicBase, isDirectory ? dirRel : rel, isDirectory, files) }, record, signal),
        }
      }
      return undefined
    },
  }
}

function providerFor({ provider }: InvalidationBase, options: InvalidatorOptions): InvalidationProvider {
  switch (provider.type) {
    case 'http':
      return createHttpCacheProvider(provider, options.outbound)
    case 'cloudfront':
      return createCloudFrontProvider(provider, options.outbound)
    case 'akamai':
      return createAkamaiProvider(provider, options.outbound, { now: options.now })
  }
}

/** The URLs a base sends requests to (caches, the CDN API), for a check of the policy at start-up. */
export function endpointsOf({ provider, publicUrl }: InvalidationBase): string[] {
  switch (provider.type) {
    case 'http':
      return [...(provider.caches ?? [publicUrl])]
    case 'cloudfront':
      return [provider.endpoint ?? 'https://cloudfront.amazonaws.com']
    case 'akamai':
      return [provider.host]
  }
}
