// Public API of backends/: one storage interface, a factory per scheme, the shared host limiter.
export { checkedLookup } from './checked-lookup.js'
export { createHostLimiter } from './host-limiter.js'
export { isScheme, openBackend } from './registry.js'
export type { Backend, BackendContext, BackendFactory, CheckedAddress, ConnectTarget, Endpoint, Entry, Features, HashAlgorithm, HostLimiter, LocationGuard, PackageEntry, S3BucketOptions, S3Options, Scheme, SshOptions, WriteOptions } from './types.js'
