/** Namespaces and escaping shared by the parser and the renderer. */
export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/'
export const APUBI_NS = 'wfm:APUBI/v1/schemas'
/** WS-Security 1.0: the Security header, its utility namespace (Created), the UsernameToken profile. */
export const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'
export const WSU_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd'
export const WSSE_TOKEN_PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
/**
 * The vendor samples declare this misspelling (note the slash) beside the real namespace, and a
 * sibling NAGRA interface sends no namespace at all: the operation is matched in all three.
 */
export const OPERATION_NAMESPACES: ReadonlySet<string> = new Set([APUBI_NS, 'wfm:/APUBI/v1/schemas', ''])

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }
/** The markup characters, and those XML 1.0 cannot hold at all (controls, non-characters, lone surrogates). */
const unsafe = /[&<>"\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * Escapes text for element content and for attribute values in double quotes. A character XML 1.0
 * cannot hold (echoed from a request, say) becomes U+FFFD: the answer stays well-formed.
 */
export function escapeXml(text: string): string {
  return text.replace(unsafe, (c) => escapes[c] ?? '\uFFFD')
}
