import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { TLSSocket } from 'node:tls'
import { PublishError } from '../errors.js'
import { clip, redact, type Logger } from '../observability/index.js'
import type { TaskService } from '../tasks/index.js'
import { AuthenticationError, type Authenticator } from './auth.js'
import { discardRest, readBody } from './body.js'
import { renderFault, toFault } from './fault.js'
import { handle, handleNow, type Handled } from './handlers.js'
import { parseRequest, type ParseLimits } from './parse.js'
import { rememberStatusParses } from './parse-memo.js'
import { rememberStatusAnswers } from './render.js'
import { escapeXml } from './xml.js'

export interface SoapEdgeOptions {
  readonly path: string
  readonly maxBodyBytes: number
  readonly limits: ParseLimits
  readonly description: { readonly wsdl: string; readonly schemas: ReadonlyMap<string, string> }
  readonly tasks: TaskService
  readonly auth: Authenticator
  readonly logger: Logger
  /** Told of every request answered, after its log line (metrics): `outcome` is 'ok' or the fault's code. */
  readonly onRequest?: (operation: string, outcome: string, seconds: number) => void
}

const XML_CONTENT_TYPE = 'text/xml; charset=utf-8'
const acceptedContentTypes = /^\s*(text\/xml|application\/soap\+xml)\s*(;|$)/i

/**
 * The defaults of APUBI_MAX_XML_DEPTH, _ELEMENTS, _ATTRIBUTES and _TEXT (the server takes them from its
 * configuration): the three operations never need more than a few dozen elements.
 */
export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxDepth: 32, maxElements: 2_000, maxAttributes: 64, maxTextLength: 64 * 1024 }

/**
 * The HTTP stage of the SOAP edge: method, path, content type and size, then parse → handle →
 * render. Answers false, at once, when the request is not for the SOAP path; true when it is, and
 * then answers it, now or later, and never throws.
 *
 * A GetTaskStatus whose body came with its headers is answered without a promise, one microtask
 * after the request event (when node has handed over the body): the WFM polls every task, and the
 * promises of an async function and its awaits cost a poll 2.5 % of its instructions.
 */
export function createSoapEdge(options: SoapEdgeOptions) {
  const { path, logger, auth } = options
  const parse = rememberStatusParses((xml) => parseRequest(xml, options.limits))
  const answer = rememberStatusAnswers()

  const respond = (req: IncomingMessage, res: ServerResponse): void => {
    // The timing costs a few µs per request: only when a line may be written or the metrics want it.
    const { onRequest } = options
    const started = onRequest || logger.isLevelEnabled('debug') ? performance.now() : 0
    let operation = 'unknown'
    let taskId: string | undefined
    let basic = false

    const answered = (result: Handled): void => {
      taskId = result.taskId
      send(res, 200, answer(result.response))
      const ms = elapsedMs(started)
      logAnswered(logger, { operation, taskId, outcome: 'ok', ms })
      onRequest?.(operation, 'ok', ms / 1000)
    }
    const answerFault = (e: unknown): void => {
      const fault = toFault(e)
      const ms = elapsedMs(started)
      if (fault.error.code === 'ERR_INTERNAL') logger.error({ err: e, operation }, 'soap request failed')
      else if (e instanceof AuthenticationError) logger.warn({ operation, client: req.socket.remoteAddress, reason: e.reason }, 'soap request refused')
      else logger.info({ operation, taskId, outcome: fault.error.code, ms, client: req.socket.remoteAddress, ...refusal(fault.error) }, 'soap request')
      onRequest?.(operation, fault.error.code, ms / 1000)
      // Answered before the whole body was read: the rest is read and dropped, bounded, rather than
      // the connection closed under it, which can reset the answer away before the client reads it.
      discardRest(req)
      // WS-I Basic Profile R1126: every fault with HTTP 500; but a refused login is a 401 challenge,
      // which clients that send Basic credentials only when asked need to see.
      if (e instanceof AuthenticationError) send(res, 401, renderFault(fault), { 'WWW-Authenticate': 'Basic realm="apubi", charset="UTF-8"' })
      else send(res, 500, renderFault(fault))
    }
    /** Where every failure ends, and nothing thrown leaves it: the server keeps serving. */
    const refused = (e: unknown): void => {
      try {
        // Thrown after the answer went out (by its log line or metrics): nothing more can be said.
        if (res.headersSent) throw e
        answerFault(e)
      } catch (unanswerable) {
        logger.error({ err: unanswerable }, 'request failed')
        res.destroy()
      }
    }
    const answerText = (xml: string): void => {
      const request = parse(xml)
      if (!basic) auth.checkToken(request.usernameToken, (req.socket as TLSSocket).encrypted === true)
      operation = request.operation
      // A fault's log line names the task asked about too.
      if (request.operation === 'GetTaskStatus') taskId = clip(request.taskId)
      const now = handleNow(request, options.tasks)
      if (now) answered(now)
      else handle(request, options.tasks).then(answered).catch(refused)
    }

    try {
      auth.checkClient(req.socket)
      if (req.method !== 'POST') throw new PublishError('ERR_REQUEST_INVALID', `HTTP method ${req.method} is not allowed; use POST`)
      const contentType = req.headers['content-type'] ?? ''
      if (!acceptedContentTypes.test(contentType)) {
        throw new PublishError('ERR_REQUEST_INVALID', `Content-Type ${contentType || '(none)'} is not text/xml or application/soap+xml`)
      }
      // Basic is checked before the body is read; without it the body must carry a UsernameToken.
      basic = auth.checkBasic(req.headers.authorization)
      const body = readBody(req, options.maxBodyBytes)
      if (typeof body === 'string') answerText(body)
      else body.then(answerText).catch(refused)
    } catch (e) {
      refused(e)
    }
  }

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    // Split by hand rather than with new URL(): this runs for every GetTaskStatus poll.
    const target = req.url ?? '/'
    const queryAt = target.indexOf('?')
    if ((queryAt < 0 ? target : target.slice(0, queryAt)) !== path) return false
    if (req.method === 'GET' || req.method === 'HEAD') serveDescription(res, new URLSearchParams(queryAt < 0 ? '' : target.slice(queryAt + 1)), options)
    else queueMicrotask(() => respond(req, res))
    return true
  }
}

/**
 * One line per request answered. The WFM polls every task every few seconds: a line per poll would
 * bury what an operator looks for at `info` (LoadAsset, PurgeAsset, and each task's state changes,
 * which the worker logs) and would cost the polls a third of their rate. Polls are logged at debug;
 * a refused request, a poll too, at info (see the catch above).
 */
function logAnswered(logger: Logger, line: { operation: string; taskId: string | undefined; outcome: string; ms: number }): void {
  if (line.operation === 'GetTaskStatus') logger.debug(line, 'soap request')
  else logger.info(line, 'soap request')
}

/** What the log says of a refused request: the reason as the client read it, and the detail it was not told. */
function refusal(error: Error): { reason: string; detail?: string } {
  const reason = clip(redact(error.message), 1024)
  return error.cause instanceof Error ? { reason, detail: clip(redact(error.cause.message), 1024) } : { reason }
}

/**
 * GET and HEAD: the WSDL (`?wsdl`), a schema it imports (`?xsd=name`), or, for a person who opened
 * the endpoint in a browser, a short page saying what it is and where to go.
 */
function serveDescription(res: ServerResponse, query: URLSearchParams, options: SoapEdgeOptions): void {
  const xsd = query.get('xsd')
  if (xsd === null && !query.has('wsdl')) {
    const page = landingPage(options.path)
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(page) }).end(page)
    return
  }
  const body = xsd !== null ? options.description.schemas.get(xsd) : options.description.wsdl
  if (body === undefined) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`No such schema; the service description is ${options.path}?wsdl\n`)
    return
  }
  send(res, 200, body)
}

function landingPage(path: string): string {
  const wsdl = escapeXml(`${path}?wsdl`)
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>APUBI endpoint</title></head><body>' +
    `<h1>APUBI SOAP endpoint</h1><p>The Workflow Manager sends LoadAsset, PurgeAsset and GetTaskStatus here, as SOAP 1.1 over HTTP POST.</p>` +
    `<ul><li>Service description: <a href="${wsdl}">${wsdl}</a></li><li>Operators: the dashboard at <a href="/admin/">/admin/</a></li></ul>` +
    '</body></html>\n'
  )
}

function send(res: ServerResponse, status: number, body: string | Buffer, extra?: Record<string, string>): void {
  const headers = { 'Content-Type': XML_CONTENT_TYPE, 'Content-Length': typeof body === 'string' ? Buffer.byteLength(body) : body.length }
  res.writeHead(status, extra ? { ...headers, ...extra } : headers)
  res.end(body)
}

/** Milliseconds since `started` (performance.now()); 0 when the request was not timed. */
function elapsedMs(started: number): number {
  return started ? performance.now() - started : 0
}
