import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { usernameToken, type ClientCredentials } from '../client/index.js'

/**
 * Where an APUBI server is and how to prove who we are to it: the client's own options (HTTP Basic or
 * a WS-Security UsernameToken), plus the TLS trust and client certificate an HTTPS endpoint may need.
 */
export interface EndpointOptions {
  readonly url: string
  readonly credentials?: ClientCredentials
  /** PEM texts: the CA to trust (besides the system's), and a client certificate and key for mTLS. */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string }
  /** How long one exchange may take before it counts as a network error. */
  readonly timeoutMs?: number
}

/** One HTTP answer, as it came, with the time it took. `error` instead when none came. */
export interface Exchange {
  readonly status: number
  readonly contentType: string
  readonly body: string
  readonly ms: number
  /** Why no answer came (refused, reset, timed out, TLS refused); status is then 0. */
  readonly error?: string
}

/** Envelope shapes: how the operation element is written, and what surrounds it. */
export interface EnvelopeShape {
  /** Prefix of the SOAP envelope namespace: the vendor's samples use `soap` and `soapenv`. */
  readonly prefix?: string
  /** The attributes on the operation element; the vendor's: a default namespace and an unused ns2. */
  readonly operationAttributes?: string
  readonly xmlDeclaration?: boolean
  readonly emptyHeader?: boolean
}

/** What the real WFM sends: no XML declaration, no Header, prefix `soap`, the namespaces of the vendor's sample. */
export const VENDOR_SHAPE: EnvelopeShape = { prefix: 'soap', operationAttributes: 'xmlns="wfm:APUBI/v1/schemas" xmlns:ns2="wfm:/APUBI/v1/schemas"' }

/**
 * The SOAPAction a WSDL-driven client sends for our WSDL's `soapAction=""` (the vendor's WSDL is not
 * public). Servers that route by SOAPAction may refuse other values: `envelope.soapaction-*` tries them.
 */
export const WSDL_SOAP_ACTION = '""'

// Long enough for a server on a loaded machine, short enough that a silent one does not hang the run.
const DEFAULT_TIMEOUT_MS = 30_000

/** Talks HTTP to one APUBI endpoint, keeping connections open as the WFM's HTTP client does. */
export class Endpoint {
  private readonly agent: HttpAgent
  private readonly secure: boolean

  constructor(readonly options: EndpointOptions) {
    const url = new URL(options.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} is not http: or https:`)
    this.secure = url.protocol === 'https:'
    this.agent = this.secure ? new HttpsAgent({ keepAlive: true, ...options.tls }) : new HttpAgent({ keepAlive: true })
  }

  /** `GET <url>?<query>`: the WSDL, say (with Basic credentials, for servers that guard it too). */
  get(query: string): Promise<Exchange> {
    return this.send('GET', `${this.options.url}?${query}`, this.basicAuthorization(), '')
  }

  /** POSTs an envelope that needs no further headers than our credentials and `SOAPAction`. */
  post(body: string, headers: Record<string, string | undefined> = {}): Promise<Exchange> {
    return this.send('POST', this.options.url, { 'Content-Type': 'text/xml; charset=utf-8', ...this.basicAuthorization(), ...headers }, body)
  }

  /** An operation in the given envelope shape, with a UsernameToken Header when that is how we authenticate. */
  envelope(operation: string, fields: string, shape: EnvelopeShape = VENDOR_SHAPE): string {
    const { prefix = 'soap', operationAttributes = 'xmlns="wfm:APUBI/v1/schemas"', xmlDeclaration = false, emptyHeader = false } = shape
    const { credentials } = this.options
    const token = credentials && credentials.scheme !== 'basic' ? usernameToken(credentials) : undefined
    const header = token ? `<${prefix}:Header>${token}</${prefix}:Header>` : emptyHeader ? `<${prefix}:Header/>` : ''
    return (
      (xmlDeclaration ? '<?xml version="1.0" encoding="UTF-8"?>\n' : '') +
      `<${prefix}:Envelope xmlns:${prefix}="http://schemas.xmlsoap.org/soap/envelope/">${header}<${prefix}:Body>` +
      `<${operation}${operationAttributes ? ` ${operationAttributes}` : ''}>${fields}</${operation}>` +
      `</${prefix}:Body></${prefix}:Envelope>`
    )
  }

  /** Sends an operation as a WSDL-driven WFM does: the vendor's envelope, the WSDL's SOAPAction. */
  call(operation: string, fields: string): Promise<Exchange> {
    return this.post(this.envelope(operation, fields), { SOAPAction: WSDL_SOAP_ACTION })
  }

  close(): void {
    this.agent.destroy()
  }

  private basicAuthorization(): Record<string, string> {
    const { credentials } = this.options
    if (credentials?.scheme !== 'basic') return {}
    return { Authorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}` }
  }

  private send(method: string, url: string, headers: Record<string, string | undefined>, body: string): Promise<Exchange> {
    const started = performance.now()
    const ms = () => performance.now() - started
    const defined = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>
    return new Promise((resolve) => {
      const answer = (response: IncomingMessage) => {
        const chunks: Buffer[] = []
        response.on('data', (c: Buffer) => chunks.push(c))
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, contentType: response.headers['content-type'] ?? '', body: Buffer.concat(chunks).toString('utf8'), ms: ms() }),
        )
        response.on('error', (e) => resolve(noAnswer(e, ms())))
      }
      const options = { method, agent: this.agent, headers: { ...defined, 'Content-Length': String(Buffer.byteLength(body)) }, timeout: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS }
      const req = this.secure ? httpsRequest(url, options, answer) : httpRequest(url, options, answer)
      req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeout} ms`)))
      req.on('error', (e) => resolve(noAnswer(e, ms())))
      req.end(body)
    })
  }
}

function noAnswer(e: Error, ms: number): Exchange {
  const code = (e as NodeJS.ErrnoException).code
  return { status: 0, contentType: '', body: '', ms, error: code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message }
}
