import { PublishError } from '../errors.js'
import { createFileBackend } from './file/index.js'
import { createFtpBackend } from './ftp/index.js'
import { createHttpBackend } from './http/index.js'
import { createS3Backend } from './s3/index.js'
import { createSftpBackend } from './sftp/index.js'
import type { Backend, BackendContext, BackendFactory, Endpoint, Scheme } from './types.js'

/** Which factory serves each scheme. A scheme not listed here is refused at request time. */
const backendFactories: Partial<Record<Scheme, BackendFactory>> = {
  file: createFileBackend,
  ftp: createFtpBackend,
  ftps: createFtpBackend,
  ftpes: createFtpBackend,
  http: createHttpBackend,
  https: createHttpBackend,
  s3: createS3Backend,
  sftp: createSftpBackend,
}

/** Whether a backend serves `scheme` (lower case, without the colon). */
export function isScheme(scheme: string): scheme is Scheme {
  return Object.hasOwn(backendFactories, scheme)
}

/** @throws PublishError ERR_UNSUPPORTED_SCHEME */
export function openBackend(endpoint: Endpoint, context: BackendContext): Backend {
  const factory = backendFactories[endpoint.scheme]
  if (!factory) throw new PublishError('ERR_UNSUPPORTED_SCHEME', `Unsupported URL scheme ${endpoint.scheme}:`)
  return factory(endpoint, context)
}
