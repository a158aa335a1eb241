import type { Code } from '../errors.js'

// Socket and TLS failures every network backend meets, as our codes, in one place.

/** Our own errno-style codes for the two timeouts (APUBI_TIMEOUT_MS), which mean different things. */
const CONNECT_TIMEOUT = 'ECONNECT_TIMEOUT'
const IDLE_TIMEOUT = 'EIDLE_TIMEOUT'

const socketErrors: Readonly<Record<string, Code>> = {
  // Nobody serves there: worth a later attempt, the host may come back.
  ECONNREFUSED: 'ERR_UNREACHABLE',
  [CONNECT_TIMEOUT]: 'ERR_UNREACHABLE',
  ENOTFOUND: 'ERR_UNREACHABLE',
  EAI_AGAIN: 'ERR_UNREACHABLE',
  EHOSTUNREACH: 'ERR_UNREACHABLE',
  ENETUNREACH: 'ERR_UNREACHABLE',
  // Lost on the way: the next attempt continues where this one stopped.
  ECONNRESET: 'ERR_TRANSFER',
  EPIPE: 'ERR_TRANSFER',
  ETIMEDOUT: 'ERR_TRANSFER',
  [IDLE_TIMEOUT]: 'ERR_TRANSFER',
}

/** No connection was made within the connect timeout: nobody answered at the address (ERR_UNREACHABLE). */
export function connectTimeout(ms: number): Error {
  return Object.assign(new Error(`no connection within ${ms} ms (connect timeout)`), { code: CONNECT_TIMEOUT })
}

/** An open connection carried nothing for the idle timeout: the transfer stalled (ERR_TRANSFER). */
export function idleTimeout(ms: number): Error {
  return Object.assign(new Error(`no data for ${ms} ms on an open connection (idle timeout)`), { code: IDLE_TIMEOUT })
}

// OpenSSL's verdicts on a certificate (Node puts them in `code`), and Node's own for a name mismatch.
const certificateErrors: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

const errnoOf = (e: unknown): string => (e as NodeJS.ErrnoException | undefined)?.code ?? ''

/** The server's TLS certificate is not one we trust for its name: refused credentials, in effect. */
export function isCertificateError(e: unknown): boolean {
  return certificateErrors.has(errnoOf(e))
}

/** Our code for a socket or certificate failure; undefined for anything else. */
export function networkErrorCode(e: unknown): Code | undefined {
  return isCertificateError(e) ? 'ERR_AUTH' : socketErrors[errnoOf(e)]
}
