// Public API of invalidate/: telling caches and CDNs to forget what a task replaced or purged.
export { edgeGridAuthorization, edgeGridTimestamp } from './edgegrid.js'
export type { EdgeGridCredentials, EdgeGridRequest } from './edgegrid.js'
export { createInvalidator, endpointsOf } from './invalidator.js'
export type { InvalidationBase, Invalidator, InvalidatorOptions, TargetInvalidation } from './invalidator.js'
export type { InvalidationCall, ProviderType } from './types.js'
