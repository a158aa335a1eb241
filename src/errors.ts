/**
 * Every error code the server raises, in one place.
 *
 * `fault` is how the SOAP edge answers the error when it is raised while *accepting* a request
 * (`null`: it is never a fault, only a task failure). `retry` tells the worker whether a task that
 * failed with it may be tried again. Codes are documented in docs/errors.md; a retired code must
 * never be reused for another meaning.
 */
export const catalog = {
  // Requests
  ERR_REQUEST_INVALID: { fault: 'Client', retry: false, text: 'Invalid request' },
  ERR_REQUEST_TOO_LARGE: { fault: 'Client', retry: false, text: 'Request too large' },
  ERR_UNAUTHENTICATED: { fault: 'Client', retry: false, text: 'Authentication failed' },
  ERR_UNKNOWN_OPERATION: { fault: 'Client', retry: false, text: 'Unknown operation' },
  ERR_POLICY_DENIED: { fault: 'Client', retry: false, text: 'Location not allowed' },
  ERR_UNSUPPORTED_SCHEME: { fault: 'Client', retry: false, text: 'Unsupported URL scheme' },
  ERR_FORBIDDEN: { fault: 'Client', retry: false, text: 'Not allowed' },
  ERR_TASK_STATE: { fault: 'Client', retry: false, text: 'Task is not in a state that allows this' },
  ERR_TASK_NOT_FOUND: { fault: 'Server', retry: false, text: 'Task Id does not exist' },
  // Work on storage
  ERR_NOT_FOUND: { fault: null, retry: false, text: 'Source or destination not found' },
  ERR_NOT_A_DIRECTORY: { fault: null, retry: false, text: 'Not a directory' },
  ERR_AUTH: { fault: null, retry: false, text: 'Authentication refused' },
  ERR_PERMISSION: { fault: null, retry: false, text: 'Permission denied' },
  ERR_UNREACHABLE: { fault: null, retry: true, text: 'Storage unreachable' },
  ERR_TRANSFER: { fault: null, retry: true, text: 'Transfer interrupted' },
  ERR_VERIFY: { fault: null, retry: true, text: 'Verification failed' },
  ERR_PACKAGE_INCOMPLETE: { fault: null, retry: false, text: 'Streaming package incomplete' },
  ERR_LEASE_LOST: { fault: null, retry: true, text: 'Task lease lost' },
  ERR_SHUTDOWN: { fault: null, retry: true, text: 'Server shutting down' },
  ERR_TOO_MANY_ATTEMPTS: { fault: null, retry: false, text: 'Gave up after too many attempts' },
  ERR_TIMEOUT: { fault: null, retry: false, text: 'Task took longer than its overall timeout' },
  ERR_CANCELLED: { fault: null, retry: false, text: 'Cancelled by operator' },
  ERR_INVALIDATION: { fault: null, retry: false, text: 'Cache invalidation refused' },
  ERR_INVALIDATION_UNAVAILABLE: { fault: null, retry: true, text: 'Cache invalidation unavailable' },
  ERR_SECRET_KEY: { fault: 'Server', retry: false, text: 'Sealed credentials cannot be opened' },
  // Server
  ERR_CONFIG_INVALID: { fault: 'Server', retry: false, text: 'Invalid configuration' },
  ERR_DATABASE: { fault: 'Server', retry: false, text: 'Database not usable' },
  ERR_INTERNAL: { fault: 'Server', retry: false, text: 'Internal error' },
} as const satisfies Record<string, { fault: 'Client' | 'Server' | null; retry: boolean; text: string }>

export type Code = keyof typeof catalog

/** An error with a catalogued code; `message` must never carry credentials (see observability/redact). */
export class PublishError extends Error {
  override name = 'PublishError'
  constructor(
    readonly code: Code,
    message: string = catalog[code].text,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  get retryable(): boolean {
    return catalog[this.code].retry
  }
}

export function isPublishError(e: unknown, code?: Code): e is PublishError {
  return e instanceof PublishError && (code === undefined || e.code === code)
}

/** Any thrown value as a PublishError; unknown errors become ERR_INTERNAL with the original as cause. */
export function asPublishError(e: unknown): PublishError {
  if (e instanceof PublishError) return e
  if (e instanceof Error && e.name === 'AbortError') {
    return new PublishError('ERR_SHUTDOWN', 'Aborted', { cause: e })
  }
  return new PublishError('ERR_INTERNAL', catalog.ERR_INTERNAL.text, { cause: e })
}
