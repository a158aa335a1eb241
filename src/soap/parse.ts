import { SaxesParser, type SaxesTagNS } from 'saxes'
import { PublishError } from '../errors.js'
import { OPERATION_NAMESPACES, SOAP_ENV_NS, WSSE_NS, WSSE_TOKEN_PROFILE, WSU_NS } from './xml.js'

/** A request as the WFM meant it: values trimmed, field spellings unified. */
export type SoapRequest = (
  | { operation: 'LoadAsset'; sourceAssetUrl: string; destinationAsset: string; metadata?: Metadata }
  | { operation: 'PurgeAsset'; destinationAsset: string; metadata?: Metadata }
  | { operation: 'GetTaskStatus'; taskId: string }
) & { readonly usernameToken?: UsernameToken }

/** A WS-Security UsernameToken from the Header, as sent; checking it is the authenticator's job. */
export interface UsernameToken {
  readonly username: string
  readonly password: string
  readonly passwordType: 'PasswordText' | 'PasswordDigest'
  /** Base64, as sent. */
  readonly nonce?: string
  readonly created?: string
}

/** MetaData's schema is not public: it is kept verbatim, with the key/value pairs we can recognise. */
export interface Metadata {
  readonly xml: string
  readonly pairs: ReadonlyArray<{ readonly key: string; readonly value: string }>
}

export interface ParseLimits {
  readonly maxDepth: number
  readonly maxElements: number
  readonly maxAttributes: number
  /** Characters of text in one element. */
  readonly maxTextLength: number
}

const operations = ['LoadAsset', 'PurgeAsset', 'GetTaskStatus'] as const
type Operation = (typeof operations)[number]

/** Field local names, lower-cased, to the name we use; the prose says SourceAssetURL, the table SourceAssetUrl. */
const fields: Record<Operation, Record<string, string>> = {
  LoadAsset: { sourceasseturl: 'SourceAssetUrl', destinationasset: 'DestinationAsset', metadata: 'MetaData' },
  PurgeAsset: { destinationasset: 'DestinationAsset', metadata: 'MetaData' },
  GetTaskStatus: { taskid: 'TaskId' },
}

interface Node {
  readonly local: string
  readonly ns: string
  readonly attributes: Record<string, string>
  readonly children: Node[]
  text: string
}

const noAttributes: Record<string, string> = Object.freeze({})

function invalid(message: string): PublishError {
  return new PublishError('ERR_REQUEST_INVALID', message)
}

/**
 * Parses one SOAP 1.1 request. Elements are matched by namespace URI, never by prefix.
 * @throws PublishError ERR_REQUEST_INVALID for anything malformed or over a limit,
 *   ERR_UNKNOWN_OPERATION for a Body holding something other than our three operations.
 */
export function parseRequest(xml: string, limits: ParseLimits): SoapRequest {
  // XML 1.0 whatever the declaration says: 1.1 would admit control characters as references.
  const parser = new SaxesParser({ xmlns: true, position: true, defaultXMLVersion: '1.0', forceXMLVersion: true })
  // Open elements from the root; index 0 is the Envelope, 1 Header/Body, 2 the operation, 3 its fields.
  const stack: Node[] = []
  let operation: Operation | undefined
  let seenBody = false
  let elements = 0
  let metadataStart = -1
  const values = new Map<string, string>()
  let metadataXml: string | undefined
  let metadataRoot: Node | undefined
  let usernameToken: UsernameToken | undefined

  parser.on('doctype', () => {
    throw invalid('DOCTYPE declarations are not allowed')
  })
  parser.on('processinginstruction', () => {
    throw invalid('Processing instructions are not allowed')
  })
  // Six handlers at most, and no 'error' or 'opentagstart' ones: past six, saxes's parser object
  // changes shape and parsing a request gets four times slower (measured). saxes throws its own
  // errors from write() and close() when no 'error' handler is set; they are translated below.
  parser.on('opentag', (tag) => {
    if (++elements > limits.maxElements) throw invalid(`More than ${limits.maxElements} elements`)
    if (stack.length >= limits.maxDepth) throw invalid(`Nesting deeper than ${limits.maxDepth}`)
    checkAttributes(tag, limits)
    const depth = stack.length
    const local = tag.local ?? tag.name
    const ns = tag.uri ?? ''
    if (depth === 0 && !(ns === SOAP_ENV_NS && local === 'Envelope')) {
      throw invalid(`Expected a SOAP 1.1 Envelope, found {${ns}}${local}`)
    }
    if (depth === 1) {
      if (ns !== SOAP_ENV_NS || (local !== 'Header' && local !== 'Body')) {
        throw invalid(`Unexpected {${ns}}${local} in the Envelope`)
      }
      if (seenBody) throw invalid(local === 'Body' ? 'More than one Body' : 'Header after Body')
      seenBody = local === 'Body'
    }
    const parent = stack[depth - 1]
    if (depth === 2 && parent?.local === 'Body') {
      if (operation) throw invalid('More than one operation in the Body')
      const found = operations.find((o) => o === local)
      if (!found || !OPERATION_NAMESPACES.has(ns)) {
        throw new PublishError('ERR_UNKNOWN_OPERATION', `Unknown operation {${ns}}${local}`)
      }
      operation = found
    }
    if (depth === 3 && operation && fieldName(operation, local, ns) === 'MetaData') {
      if (metadataStart >= 0 || metadataXml !== undefined) throw invalid('MetaData given twice')
      // The open tag just ended at `position`; '<' cannot occur inside it, so the last one starts it.
      metadataStart = xml.lastIndexOf('<', parser.position - 1)
    }
    // Only MetaData's pairs and the Header's security token read attributes: elsewhere they are not copied.
    const inHeader = depth > 1 && stack[1]!.local === 'Header'
    const attributes = (metadataStart >= 0 && depth > 3) || inHeader ? attributesOf(tag) : noAttributes
    const node: Node = { local, ns, attributes, children: [], text: '' }
    parent?.children.push(node)
    stack.push(node)
  })
  const onText = (text: string): void => {
    const node = stack[stack.length - 1]
    if (!node) return
    if (stack.length <= 3 && stack[1]?.local !== 'Header' && text.trim() !== '') throw invalid(`Unexpected text in ${node.local}`)
    if (node.text.length + text.length > limits.maxTextLength) {
      throw invalid(`Text of ${node.local} longer than ${limits.maxTextLength} characters`)
    }
    node.text += text
  }
  parser.on('text', onText)
  parser.on('cdata', onText)
  parser.on('closetag', (tag) => {
    const node = stack.pop()
    if (node && stack.length === 2 && stack[1]!.local === 'Header' && node.ns === WSSE_NS && node.local === 'Security') {
      if (usernameToken) throw invalid('More than one UsernameToken')
      usernameToken = usernameTokenOf(node)
      return
    }
    if (!node || stack.length !== 3 || !operation) return
    const name = fieldName(operation, node.local, tag.uri ?? '')
    if (name === undefined) return
    if (name === 'MetaData') {
      metadataXml = xml.slice(metadataStart, parser.position)
      metadataStart = -1
      metadataRoot = node
      return
    }
    if (node.children.length > 0) throw invalid(`${name} must hold text only`)
    if (values.has(name)) throw invalid(`${name} given twice`)
    values.set(name, node.text.trim())
  })

  try {
    parser.write(xml).close()
  } catch (e) {
    if (e instanceof PublishError) throw e
    throw invalid(`Malformed XML: ${(e as Error).message}`)
  }
  if (!seenBody) throw invalid('The Envelope has no Body')
  if (!operation) throw invalid('The Body holds no operation')

  const required = (name: string): string => {
    const value = values.get(name)
    if (!value) throw invalid(`${operation} needs a non-empty ${name}`)
    return value
  }
  const metadata =
    metadataXml !== undefined && metadataRoot ? { xml: metadataXml, pairs: metadataPairs(metadataRoot) } : undefined
  const token = usernameToken && { usernameToken }
  switch (operation) {
    case 'LoadAsset':
      return {
        operation,
        sourceAssetUrl: required('SourceAssetUrl'),
        destinationAsset: required('DestinationAsset'),
        ...(metadata && { metadata }),
        ...token,
      }
    case 'PurgeAsset':
      return { operation, destinationAsset: required('DestinationAsset'), ...(metadata && { metadata }), ...token }
    case 'GetTaskStatus':
      return { operation, taskId: required('TaskId'), ...token }
  }
}

const PASSWORD_TYPES = {
  '': 'PasswordText', // the profile's default when Type is absent
  [`${WSSE_TOKEN_PROFILE}#PasswordText`]: 'PasswordText',
  [`${WSSE_TOKEN_PROFILE}#PasswordDigest`]: 'PasswordDigest',
} as const

/** The UsernameToken of a wsse:Security header (OASIS UsernameToken Profile 1.0), if it holds one. */
function usernameTokenOf(security: Node): UsernameToken | undefined {
  const token = security.children.find((c) => c.ns === WSSE_NS && c.local === 'UsernameToken')
  if (!token) return undefined
  const child = (ns: string, local: string) => token.children.find((c) => c.ns === ns && c.local === local)
  const username = child(WSSE_NS, 'Username')
  const password = child(WSSE_NS, 'Password')
  if (!username || !password) throw invalid('A UsernameToken needs a Username and a Password')
  const type = (password.attributes['Type'] ?? '').trim()
  const passwordType = PASSWORD_TYPES[type as keyof typeof PASSWORD_TYPES]
  if (!passwordType) throw invalid(`Unsupported password type ${type}`)
  const nonce = child(WSSE_NS, 'Nonce')
  if (nonce && !/#Base64Binary$/.test(nonce.attributes['EncodingType'] ?? '#Base64Binary')) throw invalid('A Nonce must be Base64Binary')
  const created = child(WSU_NS, 'Created')
  return {
    username: username.text.trim(),
    password: password.text.trim(),
    passwordType,
    ...(nonce && { nonce: nonce.text.trim() }),
    ...(created && { created: created.text.trim() }),
  }
}

function fieldName(operation: Operation, local: string, ns: string): string | undefined {
  return OPERATION_NAMESPACES.has(ns) ? fields[operation][local.toLowerCase()] : undefined
}

/** Attributes by local name, namespace declarations left out; only MetaData's elements need them. */
function attributesOf(tag: SaxesTagNS): Record<string, string> {
  const result: Record<string, string> = {}
  for (const name in tag.attributes) {
    const attribute = tag.attributes[name]!
    if (attribute.prefix !== 'xmlns' && attribute.name !== 'xmlns') result[attribute.local] = attribute.value
  }
  return result
}

/** Attributes count against their own limit, and each value against the text limit. */
function checkAttributes(tag: SaxesTagNS, limits: ParseLimits): void {
  let count = 0
  for (const name in tag.attributes) {
    if (++count > limits.maxAttributes) throw invalid(`More than ${limits.maxAttributes} attributes on ${tag.name}`)
    if (tag.attributes[name]!.value.length > limits.maxTextLength) {
      throw invalid(`Attribute ${name} of ${tag.name} longer than ${limits.maxTextLength} characters`)
    }
  }
}

/**
 * Key/value pairs of the shapes seen in practice: `<metadata key="k">v</metadata>` (or `name=`),
 * `<Key>k</Key><Value>v</Value>` pairs (wrapped or as siblings), and simple `<Title>v</Title>` leaves.
 */
export function metadataPairs(root: Node): Array<{ key: string; value: string }> {
  const pairs: Array<{ key: string; value: string }> = []
  const visit = (nodes: Node[]): void => {
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!
      const keyAttribute = node.attributes['key'] ?? node.attributes['name']
      const next = nodes[i + 1]
      if (keyAttribute !== undefined && node.children.length === 0) {
        pairs.push({ key: keyAttribute, value: node.text.trim() })
      } else if (/^(key|name)$/i.test(node.local) && next && /^value$/i.test(next.local)) {
        pairs.push({ key: node.text.trim(), value: next.text.trim() })
        i++
      } else if (node.children.length === 0) {
        pairs.push({ key: node.local, value: node.text.trim() })
      } else {
        visit(node.children)
      }
    }
  }
  visit(root.children)
  return pairs
}
