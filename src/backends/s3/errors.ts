// How the AWS SDK's and the socket's failures read as our codes: the S3 backend's error edge.
import { S3ServiceException } from '@aws-sdk/client-s3'
import type { Code } from '../../errors.js'
import { networkErrorCode } from '../network-errors.js'

const serviceCodes: Readonly<Record<string, Code>> = {
  NoSuchKey: 'ERR_NOT_FOUND',
  NotFound: 'ERR_NOT_FOUND', // HEAD answers carry no body, hence no S3 code
  NoSuchBucket: 'ERR_NOT_FOUND',
  InvalidAccessKeyId: 'ERR_AUTH',
  SignatureDoesNotMatch: 'ERR_AUTH',
  ExpiredToken: 'ERR_AUTH',
  InvalidToken: 'ERR_AUTH',
  CredentialsProviderError: 'ERR_AUTH', // no credentials anywhere in the SDK's chain
  AccessDenied: 'ERR_PERMISSION',
  AllAccessDisabled: 'ERR_PERMISSION',
  Forbidden: 'ERR_PERMISSION',
  SlowDown: 'ERR_TRANSFER',
  InternalError: 'ERR_TRANSFER',
  ServiceUnavailable: 'ERR_TRANSFER',
  RequestTimeout: 'ERR_TRANSFER',
  TimeoutError: 'ERR_TRANSFER', // the handler's idle timeout; its connect timeout is told apart below
  PreconditionFailed: 'ERR_TRANSFER', // the object changed while we read it: a new attempt reads it afresh
}

/** Our code for an error of the AWS SDK or of the socket under it. */
export function codeFor(e: unknown): Code {
  if (!(e instanceof Error)) return 'ERR_INTERNAL'
  // No connection at all is the store being unreachable, not a transfer that stalled.
  if (e.name === 'TimeoutError' && /did not establish a connection/.test(e.message)) return 'ERR_UNREACHABLE'
  const named = serviceCodes[e.name]
  if (named) return named
  const network = networkErrorCode(e)
  if (network) return network
  const status = e instanceof S3ServiceException ? e.$metadata.httpStatusCode : undefined
  if (status === 404) return 'ERR_NOT_FOUND'
  if (status === 401) return 'ERR_AUTH'
  if (status === 403) return 'ERR_PERMISSION'
  if (status === 429 || (status !== undefined && status >= 500)) return 'ERR_TRANSFER'
  return 'ERR_INTERNAL'
}
