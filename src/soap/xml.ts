/** Namespaces and escaping shared by the parser and the renderer. */
export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/'
export const APUBI_NS = 'wfm:APUBI/v1/schemas'
/**
 * The vendor samples declare this misspelling (note the slash) beside the real namespace, and a
 * sibling NAGRA interface sends no namespace at all: the operation is matched in all three.
 */
export const OPERATION_NAMESPACES: ReadonlySet<string> = new Set([APUBI_NS, 'wfm:/APUBI/v1/schemas', ''])

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }

/** Escapes text for element content and for attribute values in double quotes. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => escapes[c] ?? c)
}
