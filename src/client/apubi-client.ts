import { createHash, randomBytes } from 'node:crypto'
import { SaxesParser } from 'saxes'
import { escapeXml, WSSE_NS, WSSE_TOKEN_PROFILE, WSU_NS } from '../soap/index.js'

/** An APUBI answer: the text of its leaf elements by local name (Status, TaskId, faultstring, …). */
export interface ApubiAnswer {
  readonly httpStatus: number
  readonly values: ReadonlyMap<string, string>
}

export class ApubiFault extends Error {
  override name = 'ApubiFault'
  constructor(
    readonly httpStatus: number,
    readonly faultcode: string,
    readonly faultstring: string,
    readonly detail: string,
  ) {
    super(`${faultcode}: ${faultstring}${detail && detail !== faultstring ? ` (${detail})` : ''}`)
  }
}

export type TaskStatus = 'SUCCESS' | 'FAILED' | 'IN_PROGRESS'

/**
 * How the client proves who it is: HTTP Basic, or a WS-Security UsernameToken in the SOAP Header with
 * the password as a digest (nonce and Created) or as text (for servers reached over HTTPS).
 */
export interface ClientCredentials {
  readonly user: string
  readonly password: string
  readonly scheme: 'basic' | 'digest' | 'text'
}

/**
 * A client of any APUBI server, speaking as the WFM does: the vendor's envelope shape, the default
 * namespace on the operation, no Header.
 */
export class ApubiClient {
  constructor(
    readonly url: string,
    private readonly credentials?: ClientCredentials,
  ) {}

  async loadAsset(source: string, destination: string, metadataXml = ''): Promise<string> {
    const answer = await this.call('LoadAsset', field('SourceAssetUrl', source) + field('DestinationAsset', destination) + metadataXml)
    return required(answer, 'TaskId')
  }

  async purgeAsset(destination: string): Promise<string> {
    return required(await this.call('PurgeAsset', field('DestinationAsset', destination)), 'TaskId')
  }

  async getTaskStatus(taskId: string): Promise<{ status: TaskStatus; destinationAsset?: string }> {
    const answer = await this.call('GetTaskStatus', field('TaskId', taskId))
    const status = required(answer, 'Status') as TaskStatus
    const destinationAsset = answer.values.get('DestinationAsset')
    return destinationAsset === undefined ? { status } : { status, destinationAsset }
  }

  /** Polls until the task ends; `onPoll` sees every answer, and the next poll waits for it. */
  async waitFor(taskId: string, intervalMs = 1_000, onPoll?: (status: TaskStatus) => void | Promise<void>) {
    for (;;) {
      const result = await this.getTaskStatus(taskId)
      await onPoll?.(result.status)
      if (result.status !== 'IN_PROGRESS') return result
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
  }

  /** Sends one operation; a fault becomes an ApubiFault. */
  async call(operation: string, fields: string): Promise<ApubiAnswer> {
    const { credentials } = this
    const header = credentials && credentials.scheme !== 'basic' ? `<soap:Header>${usernameToken(credentials)}</soap:Header>` : ''
    const body =
      `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">${header}<soap:Body>` +
      `<${operation} xmlns="wfm:APUBI/v1/schemas">${fields}</${operation}>` +
      '</soap:Body></soap:Envelope>'
    const basic = credentials?.scheme === 'basic' && { Authorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}` }
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"${operation}"`, ...basic },
      body,
    })
    const values = leafValues(await response.text())
    if (values.has('faultcode') || !response.ok) {
      throw new ApubiFault(response.status, values.get('faultcode') ?? '', values.get('faultstring') ?? `HTTP ${response.status}`, values.get('message') ?? '')
    }
    return { httpStatus: response.status, values }
  }
}

/** A wsse:Security header (UsernameToken Profile 1.0); a digest gets a fresh nonce and Created each time. */
export function usernameToken({ user, password, scheme }: ClientCredentials, nonce = randomBytes(16), created = new Date().toISOString()): string {
  const type = scheme === 'digest' ? 'PasswordDigest' : 'PasswordText'
  const secret = scheme === 'digest' ? createHash('sha1').update(nonce).update(created).update(password).digest('base64') : password
  const freshness =
    scheme === 'digest'
      ? `<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">${nonce.toString('base64')}</wsse:Nonce><wsu:Created>${created}</wsu:Created>`
      : ''
  return (
    `<wsse:Security xmlns:wsse="${WSSE_NS}" xmlns:wsu="${WSU_NS}"><wsse:UsernameToken>` +
    `<wsse:Username>${escapeXml(user)}</wsse:Username>` +
    `<wsse:Password Type="${WSSE_TOKEN_PROFILE}#${type}">${escapeXml(secret)}</wsse:Password>${freshness}` +
    '</wsse:UsernameToken></wsse:Security>'
  )
}

function field(name: string, value: string): string {
  return `<${name}>${escapeXml(value)}</${name}>`
}

function required(answer: ApubiAnswer, name: string): string {
  const value = answer.values.get(name)
  if (value === undefined) throw new Error(`The server's answer has no ${name}`)
  return value
}

/** First text of each leaf element by local name; tolerant of any prefix or namespace. */
function leafValues(xml: string): Map<string, string> {
  const values = new Map<string, string>()
  const parser = new SaxesParser({ xmlns: true })
  let text = ''
  parser.on('opentag', () => (text = ''))
  parser.on('text', (t) => (text += t))
  parser.on('closetag', (tag) => {
    const name = tag.local ?? tag.name
    if (!values.has(name)) values.set(name, text.trim())
    text = ''
  })
  try {
    parser.write(xml).close()
  } catch {
    // Not XML (a proxy's error page, say): the caller reports the HTTP status.
  }
  return values
}
