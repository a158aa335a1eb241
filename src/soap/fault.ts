import { asPublishError, catalog, type PublishError } from '../errors.js'
import { clip, redact } from '../observability/index.js'
import { envelope } from './render.js'
import { APUBI_NS, escapeXml } from './xml.js'

export interface Fault {
  readonly code: 'Client' | 'Server'
  readonly error: PublishError
}

/** Longest detail message a fault carries: each client value in it is clipped already, this bounds them all. */
const MAX_MESSAGE_CHARS = 1024

/**
 * The only path from an error to a fault. Code and faultstring come from the catalog, the detail
 * message from the error's own message, redacted (it may quote the request's URLs) and clipped; never
 * a stack or a cause. Errors that are not catalogued faults become ERR_INTERNAL: the caller logs the original.
 */
export function toFault(e: unknown): Fault {
  const error = asPublishError(e)
  const fault = catalog[error.code].fault
  if (fault === null) return { code: 'Server', error }
  return { code: fault, error }
}

export function renderFault({ code, error }: Fault): string {
  const text = catalog[error.code].text
  return envelope(
    '<soapenv:Fault>' +
      `<faultcode>soapenv:${code}</faultcode>` +
      `<faultstring>${escapeXml(text)}</faultstring>` +
      `<detail><ns2:ExceptionWS xmlns:ns2="${APUBI_NS}"><message>${escapeXml(clip(redact(error.message), MAX_MESSAGE_CHARS))}</message></ns2:ExceptionWS></detail>` +
      '</soapenv:Fault>',
  )
}
