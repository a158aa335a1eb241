import type { IncomingMessage, ServerResponse } from 'node:http'
import { PublishError } from '../errors.js'
import type { Logger } from '../observability/index.js'
import type { TaskService } from '../tasks/index.js'
import { renderFault, toFault } from './fault.js'
import { handle } from './handlers.js'
import { parseRequest, type ParseLimits } from './parse.js'
import { rememberStatusParses } from './parse-memo.js'
import { renderResponse } from './render.js'

export interface SoapEdgeOptions {
  readonly path: string
  readonly maxBodyBytes: number
  readonly limits: ParseLimits
  readonly description: { readonly wsdl: string; readonly schemas: ReadonlyMap<string, string> }
  readonly tasks: TaskService
  readonly logger: Logger
}

const XML_CONTENT_TYPE = 'text/xml; charset=utf-8'
const acceptedContentTypes = /^\s*(text\/xml|application\/soap\+xml)\s*(;|$)/i

/** Safe defaults: the three operations never need more than a few dozen elements. */
export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxDepth: 32, maxElements: 2_000, maxAttributes: 64, maxTextLength: 64 * 1024 }

/**
 * The HTTP stage of the SOAP edge: method, path, content type and size, then parse → handle →
 * render. Answers with false when the request is not for the SOAP path.
 */
export function createSoapEdge(options: SoapEdgeOptions) {
  const { path, logger } = options
  const parse = rememberStatusParses((xml) => parseRequest(xml, options.limits))
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    // Split by hand rather than with new URL(): this runs for every GetTaskStatus poll.
    const target = req.url ?? '/'
    const queryAt = target.indexOf('?')
    if ((queryAt < 0 ? target : target.slice(0, queryAt)) !== path) return false
    if (req.method === 'GET' || req.method === 'HEAD') {
      serveDescription(res, new URLSearchParams(queryAt < 0 ? '' : target.slice(queryAt + 1)), options)
      return true
    }
    // The timing and the log line cost a few µs per request: only when the line will be written.
    const logged = logger.isLevelEnabled('info')
    const started = logged ? process.hrtime.bigint() : 0n
    let operation = 'unknown'
    let taskId: string | undefined
    try {
      if (req.method !== 'POST') throw new PublishError('ERR_REQUEST_INVALID', `HTTP method ${req.method} is not allowed; use POST`)
      const contentType = req.headers['content-type'] ?? ''
      if (!acceptedContentTypes.test(contentType)) {
        throw new PublishError('ERR_REQUEST_INVALID', `Content-Type ${contentType || '(none)'} is not text/xml or application/soap+xml`)
      }
      const xml = await readBody(req, options.maxBodyBytes)
      const request = parse(xml)
      operation = request.operation
      const result = await handle(request, options.tasks)
      taskId = result.taskId
      send(res, 200, renderResponse(result.response))
      if (logged) logger.info({ operation, taskId, outcome: 'ok', ms: elapsedMs(started) }, 'soap request')
    } catch (e) {
      const fault = toFault(e)
      if (fault.error.code === 'ERR_INTERNAL') logger.error({ err: e, operation }, 'soap request failed')
      else if (logged) logger.info({ operation, taskId, outcome: fault.error.code, ms: elapsedMs(started) }, 'soap request')
      // WS-I Basic Profile R1126: every fault with HTTP 500.
      send(res, 500, renderFault(fault), req.readableEnded ? undefined : { Connection: 'close' })
    }
    return true
  }
}

function serveDescription(res: ServerResponse, query: URLSearchParams, options: SoapEdgeOptions): void {
  const xsd = query.get('xsd')
  const body = xsd !== null ? options.description.schemas.get(xsd) : query.has('wsdl') ? options.description.wsdl : undefined
  if (body === undefined) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Try ${options.path}?wsdl\n`)
    return
  }
  send(res, 200, body)
}

function send(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  const headers = { 'Content-Type': XML_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) }
  res.writeHead(status, extra ? { ...headers, ...extra } : headers)
  res.end(body)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The body as text, refusing it as soon as it passes `maxBytes` (announced or received).
 * @throws PublishError ERR_REQUEST_TOO_LARGE, ERR_REQUEST_INVALID for bytes that are not UTF-8.
 */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const tooLarge = () => new PublishError('ERR_REQUEST_TOO_LARGE', `Request body larger than ${maxBytes} bytes`)
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) throw tooLarge()
  // Events rather than an async iterator: this runs for every request, and it is measurably cheaper.
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        req.removeAllListeners('data')
        req.pause()
        reject(tooLarge())
      } else chunks.push(chunk)
    })
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    req.once('error', reject)
  })
  try {
    return utf8.decode(body)
  } catch {
    throw new PublishError('ERR_REQUEST_INVALID', 'Request body is not valid UTF-8')
  }
}

function elapsedMs(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6
}
