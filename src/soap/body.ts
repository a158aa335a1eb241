import type { IncomingMessage } from 'node:http'
import { createGunzip, createInflate } from 'node:zlib'
import { PublishError } from '../errors.js'

type Coding = 'gzip' | 'deflate'

/**
 * The request body as text: at once when node has it all buffered already, else a promise of it.
 * Called from the request event, a body that came in the same packets as its headers is not handed
 * over yet: node's parser hands it over right after the event, from the same read of the socket, so
 * one microtask later (queueMicrotask) it is all buffered and one read() takes it, without the
 * stream's events and promises. `maxBytes` caps the bytes received (as announced in Content-Length,
 * and as counted) and, for a gzip or deflate body, the decoded bytes too: decoding stops as soon as
 * they pass it, so a compression bomb never inflates in memory.
 * @throws PublishError ERR_REQUEST_TOO_LARGE; ERR_REQUEST_INVALID for a Content-Encoding other than
 *   gzip, deflate or identity, a broken compressed stream, or bytes that are not UTF-8 (thrown, or
 *   rejected by the promise).
 */
export function readBody(req: IncomingMessage, maxBytes: number): string | Promise<string> {
  const coding = contentCoding(req.headers['content-encoding'])
  const announced = Number(req.headers['content-length'] ?? -1)
  if (announced > maxBytes) throw tooLarge(maxBytes)
  if (coding) return receiveDecoded(req, coding, maxBytes).then(decodeUtf8)
  if (req.complete || req.readableLength === announced) return decodeUtf8(takeBuffered(req, maxBytes))
  return receive(req, maxBytes).then(decodeUtf8)
}

/**
 * The whole body, already buffered by the stream. The stream's own end comes later, with the
 * parser's next callback, and is not waited for: node's server lets go of a request read this way
 * itself (its clearIncoming), and resuming the stream only to see the end would cost the poll as
 * much again as all the rest of the stream's work.
 */
function takeBuffered(req: IncomingMessage, maxBytes: number): Buffer {
  if (req.readableLength > maxBytes) throw tooLarge(maxBytes)
  return (req.read() as Buffer | null) ?? Buffer.alloc(0)
}

/** How much of a refused body is read and dropped before the connection is cut instead. */
const DISCARD_LIMIT_BYTES = 64 << 20

/**
 * After an answer given before the body was read (a refusal): reads and drops the rest, so that the
 * connection stays usable and is never closed with unread bytes, which resets it and can destroy the
 * answer before the client reads it (RFC 9112 §9.6). A client sending more than 64 MiB more is cut
 * off; the request timeout bounds the time it may take.
 */
export function discardRest(req: IncomingMessage): void {
  if (req.readableEnded) return
  let discarded = 0
  req.removeAllListeners('data')
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length
    if (discarded > DISCARD_LIMIT_BYTES) req.socket.destroy()
  })
  req.resume()
}

function tooLarge(maxBytes: number, coding?: Coding): PublishError {
  return new PublishError('ERR_REQUEST_TOO_LARGE', `Request body larger than ${maxBytes} bytes${coding ? ` once ${coding}-decoded` : ''}`)
}

/** The client went away (or was timed out) mid-body: nobody will read the answer, but the log says what happened. */
function cutShort(): PublishError {
  return new PublishError('ERR_REQUEST_INVALID', 'The connection closed before the request body ended')
}

/** The one coding a body arrived in (RFC 9110 §8.4): `deflate` is the zlib format, as the RFC says. */
function contentCoding(header: string | undefined): Coding | undefined {
  if (header === undefined) return undefined
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity')
  if (codings.length === 0) return undefined
  // One layer only: stacked codings buy a client nothing and multiply what one request can cost.
  if (codings.length === 1) {
    if (codings[0] === 'gzip' || codings[0] === 'x-gzip') return 'gzip'
    if (codings[0] === 'deflate') return 'deflate'
  }
  throw new PublishError('ERR_REQUEST_INVALID', `Content-Encoding ${header.trim()} is not supported; send gzip, deflate or no encoding`)
}

/** The body as received. Events rather than an async iterator: this runs for every request, and it is measurably cheaper. */
function receive(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        req.removeAllListeners('data')
        req.pause()
        reject(tooLarge(maxBytes))
      } else chunks.push(chunk)
    })
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    req.once('error', () => reject(cutShort()))
  })
}

/** The body decoded as it streams in, both the received and the decoded bytes under the cap. */
function receiveDecoded(req: IncomingMessage, coding: Coding, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const decoder = coding === 'gzip' ? createGunzip() : createInflate()
    const chunks: Buffer[] = []
    let received = 0
    let decoded = 0
    let settled = false
    const stop = (e: unknown) => {
      if (settled) return
      settled = true
      req.unpipe(decoder)
      req.removeListener('data', count)
      req.pause()
      // Destroying the decoder ends the inflation at once: nothing more is produced or kept.
      decoder.destroy()
      reject(e)
    }
    const count = (chunk: Buffer) => {
      received += chunk.length
      if (received > maxBytes) stop(tooLarge(maxBytes))
    }
    req.on('data', count)
    req.once('error', () => stop(cutShort()))
    decoder.on('data', (chunk: Buffer) => {
      if (settled) return
      decoded += chunk.length
      if (decoded > maxBytes) stop(tooLarge(maxBytes, coding))
      else chunks.push(chunk)
    })
    // Kept after settling: a chunk piped in the same tick as stop() may still reach the destroyed decoder.
    decoder.on('error', (e) => stop(new PublishError('ERR_REQUEST_INVALID', `The body is not valid ${coding} data: ${e.message}`)))
    decoder.once('end', () => {
      if (settled) return
      settled = true
      resolve(Buffer.concat(chunks, decoded))
    })
    req.pipe(decoder)
  })
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** UTF-8 only, as the WFM sends; a UTF-8 byte order mark is dropped. */
function decodeUtf8(body: Buffer): string {
  // A UTF-16 or UTF-32 byte order mark, or a NUL among the first two bytes ('<' of a wide encoding):
  // say so, rather than let it fail later as a strange character.
  if ((body[0] === 0xfe && body[1] === 0xff) || (body[0] === 0xff && body[1] === 0xfe) || body[0] === 0 || body[1] === 0) {
    throw new PublishError('ERR_REQUEST_INVALID', 'Request body is UTF-16 or UTF-32; only UTF-8 is accepted')
  }
  try {
    return utf8.decode(body)
  } catch {
    throw new PublishError('ERR_REQUEST_INVALID', 'Request body is not valid UTF-8')
  }
}
