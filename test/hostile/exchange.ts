// A raw HTTP/1.1 client over a TCP socket: it sends exactly the bytes it is given (malformed ones
// too), at the pace it is told, keeps reading while it writes (the server may answer before the body
// is sent), and reports every response and whether the server closed the connection.
import { connect, type Socket } from 'node:net'
import { connect as connectTls, type ConnectionOptions } from 'node:tls'

export interface Response {
  readonly status: number
  /** Header names lower-cased; a repeated header keeps its last value. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

export interface Answer {
  readonly responses: readonly Response[]
  /** The server closed the connection (rather than this client, once it had what it waited for). */
  readonly closedByServer: boolean
  /** Bytes after the last complete response: a response cut short. */
  readonly leftover: Buffer
}

export interface Pace {
  /** Bytes written per tick. */
  readonly bytes: number
  readonly everyMs: number
  /** Written every tick once the request is out, until the server closes (a header line, to trickle forever). */
  readonly repeat?: string
}

export interface Send {
  readonly port: number
  /** The request: one buffer, or chunks produced on demand (large bodies never sit in memory). */
  readonly request: Buffer | Iterable<Buffer>
  /** Trickle the request instead of writing it at once. */
  readonly pace?: Pace
  /** Resolve once this many complete responses arrived (the socket is then closed by us); default 1. */
  readonly responses?: number
  /** Wait for the server to close the connection, whatever it answered. */
  readonly untilClosed?: boolean
  /** Over TLS, with these options. */
  readonly tls?: ConnectionOptions
  /** The request is a HEAD: responses carry no body whatever their Content-Length. */
  readonly bodiless?: boolean
  /** Gives up (rejects) after this long: a server that neither answers nor closes is a failure. */
  readonly timeoutMs?: number
}

/** Sends one request (or a pipelined series) and collects what comes back. */
export function exchange(send: Send): Promise<Answer> {
  const { port, responses: wanted = 1, untilClosed = false, bodiless = false, timeoutMs = 60_000 } = send
  const parse = (data: Buffer) => parseResponses(data, bodiless)
  return new Promise<Answer>((resolve, reject) => {
    const socket: Socket = send.tls ? connectTls({ port, host: '127.0.0.1', ...send.tls }) : connect(port, '127.0.0.1')
    let received = Buffer.alloc(0)
    let closedByUs = false
    let writing: NodeJS.Timeout | undefined
    const timer = setTimeout(() => {
      finish()
      reject(new Error(`no answer within ${timeoutMs} ms; received so far: ${JSON.stringify(received.subarray(0, 300).toString('latin1'))}`))
    }, timeoutMs)
    const finish = () => {
      clearTimeout(timer)
      clearInterval(writing)
      if (!socket.destroyed) {
        closedByUs = true
        socket.destroy()
      }
    }
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (!untilClosed && parse(received).responses.length >= wanted) {
        finish()
        resolve({ ...parse(received), closedByServer: false })
      }
    })
    // A server that answers early and closes makes our remaining writes fail: expected, not an error.
    socket.on('error', () => {})
    socket.on('close', () => {
      const closedByServer = !closedByUs
      finish()
      resolve({ ...parse(received), closedByServer })
    })
    socket.once(send.tls ? 'secureConnect' : 'connect', () => {
      if (send.pace) writing = trickle(socket, send.request, send.pace)
      else void pour(socket, send.request)
    })
  })
}

/** Writes everything, respecting backpressure, until done or the socket closes. */
async function pour(socket: Socket, request: Buffer | Iterable<Buffer>): Promise<void> {
  for (const chunk of Buffer.isBuffer(request) ? [request] : request) {
    if (socket.destroyed || !socket.writable) return
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done)
          socket.off('close', done)
          resolve()
        }
        socket.on('drain', done)
        socket.on('close', done)
      })
    }
  }
}

function trickle(socket: Socket, request: Buffer | Iterable<Buffer>, pace: Pace): NodeJS.Timeout {
  const bytes = Buffer.concat(Buffer.isBuffer(request) ? [request] : [...request])
  let offset = 0
  return setInterval(() => {
    if (socket.destroyed || !socket.writable) return
    if (offset < bytes.length) {
      socket.write(bytes.subarray(offset, offset + pace.bytes))
      offset += pace.bytes
    } else if (pace.repeat !== undefined) socket.write(pace.repeat)
  }, pace.everyMs)
}

const HEAD_END = Buffer.from('\r\n\r\n')

/** Complete responses at the start of `data`, framed by Content-Length (or the connection's end). */
export function parseResponses(data: Buffer, bodiless = false): { responses: Response[]; leftover: Buffer } {
  const responses: Response[] = []
  let rest = data
  for (;;) {
    const headEnd = rest.indexOf(HEAD_END)
    if (headEnd < 0) break
    const [statusLine = '', ...lines] = rest.subarray(0, headEnd).toString('latin1').split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1])
    if (!Number.isInteger(status)) break
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const start = headEnd + HEAD_END.length
    // An interim 100 Continue has no body and precedes the real answer; an answer to HEAD has none either.
    if (status === 100) {
      rest = rest.subarray(start)
      continue
    }
    if (bodiless) {
      responses.push({ status, headers, body: Buffer.alloc(0) })
      rest = rest.subarray(start)
      continue
    }
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const chunked = dechunk(rest.subarray(start))
      if (!chunked) break
      responses.push({ status, headers, body: chunked.body })
      rest = chunked.rest
      continue
    }
    const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length'])
    // No length: node's own error answers (400, 408, 431) end with the connection.
    if (length === undefined) {
      if (headers['connection']?.toLowerCase() !== 'close') break
      responses.push({ status, headers, body: rest.subarray(start) })
      rest = Buffer.alloc(0)
      break
    }
    if (rest.length < start + length) break
    responses.push({ status, headers, body: rest.subarray(start, start + length) })
    rest = rest.subarray(start + length)
  }
  return { responses, leftover: rest }
}

/** A complete chunked body at the start of `data` (no trailers), or undefined while it is incomplete. */
function dechunk(data: Buffer): { body: Buffer; rest: Buffer } | undefined {
  const parts: Buffer[] = []
  let offset = 0
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset)
    if (lineEnd < 0) return undefined
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16)
    if (!Number.isInteger(size)) return undefined
    const start = lineEnd + 2
    if (data.length < start + size + 2) return undefined
    if (size === 0) return { body: Buffer.concat(parts), rest: data.subarray(start + 2) }
    parts.push(data.subarray(start, start + size))
    offset = start + size + 2
  }
}
