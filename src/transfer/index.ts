// Public API of transfer/: locating URLs, publishing and purging.
export { publish } from './copy.js'
export { createCredentials } from './credentials.js'
export type { CredentialFiller, HostCredentials } from './credentials.js'
export type { Job, Progress, PublishedFile, TransferOptions } from './job.js'
export { isRelativeDestination, resolveDestination } from './destination.js'
export { createLocationPolicy, parseLocation } from './locate.js'
export type { Location, LocationPolicy, LocationPolicyOptions, Resolver } from './locate.js'
export { purge } from './purge.js'
