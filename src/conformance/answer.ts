import { SaxesParser } from 'saxes'

/** An element of a parsed document: its namespace, local name, attributes, own text and ancestors' local names. */
export interface XmlElement {
  readonly uri: string
  readonly local: string
  readonly attributes: Readonly<Record<string, string>>
  readonly text: string
  readonly ancestors: readonly string[]
}

export type ParsedXml = { readonly ok: true; readonly elements: readonly XmlElement[] } | { readonly ok: false; readonly error: string }

/** Every element of `text` in document order, or why it is not well-formed namespaced XML. */
export function parseXml(text: string): ParsedXml {
  if (text.trim() === '') return { ok: false, error: 'empty body' }
  const elements: XmlElement[] = []
  const open: Array<{ uri: string; local: string; attributes: Record<string, string>; text: string }> = []
  const parser = new SaxesParser({ xmlns: true })
  parser.on('opentag', (tag) => {
    const attributes = Object.fromEntries(Object.values(tag.attributes).map((a) => [a.local, a.value]))
    open.push({ uri: tag.uri ?? '', local: tag.local ?? tag.name, attributes, text: '' })
  })
  parser.on('text', (t) => {
    const current = open[open.length - 1]
    if (current) current.text += t
  })
  parser.on('closetag', () => {
    const done = open.pop()!
    elements.push({ ...done, text: done.text.trim(), ancestors: open.map((e) => e.local) })
  })
  try {
    parser.write(text).close()
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0]! }
  }
  return { ok: true, elements }
}

/** What an APUBI answer says: a fault and its parts, or the values of its leaf elements. */
export interface SoapAnswer {
  readonly wellFormed: boolean
  readonly parseError?: string
  readonly fault?: SoapFault
  /** Text of the first element of each local name (Status, TaskId, DestinationAsset, …). */
  readonly values: ReadonlyMap<string, string>
}

export interface SoapFault {
  readonly faultcode: string
  readonly faultstring: string
  readonly hasDetail: boolean
  /** The ExceptionWS element of the detail: its namespace and message. */
  readonly exceptionWs?: { readonly namespace: string; readonly message?: string }
}

/** Reads an answer's body without trusting its shape: any prefix, any namespace, not even XML. */
export function readAnswer(body: string): SoapAnswer {
  const parsed = parseXml(body)
  if (!parsed.ok) return { wellFormed: false, parseError: parsed.error, values: new Map() }
  const values = new Map<string, string>()
  for (const e of parsed.elements) if (!values.has(e.local)) values.set(e.local, e.text)
  const fault = parsed.elements.find((e) => e.local === 'Fault' && e.ancestors.includes('Body'))
  if (!fault) return { wellFormed: true, values }
  const inFault = parsed.elements.filter((e) => e.ancestors.includes('Fault'))
  const exception = inFault.find((e) => e.local === 'ExceptionWS')
  const message = inFault.find((e) => e.local === 'message' && e.ancestors.includes('ExceptionWS'))
  return {
    wellFormed: true,
    values,
    fault: {
      // SOAP 1.1 names, else the SOAP 1.2 ones (Code/Value, Reason/Text) some servers answer with.
      faultcode: (inFault.find((e) => e.local === 'faultcode') ?? inFault.find((e) => e.local === 'Value' && e.ancestors.at(-1) === 'Code'))?.text ?? '',
      faultstring: (inFault.find((e) => e.local === 'faultstring') ?? inFault.find((e) => e.local === 'Text' && e.ancestors.at(-1) === 'Reason'))?.text ?? '',
      hasDetail: inFault.some((e) => e.local === 'detail' || e.local === 'Detail'),
      ...(exception && { exceptionWs: { namespace: exception.uri, ...(message && { message: message.text }) } }),
    },
  }
}
