import type { IncomingMessage } from 'node:http'
import { PublishError } from '../errors.js'

/** An operator's change is a few settings: anything larger is a mistake or an attack. */
const MAX_BODY_BYTES = 64 * 1024

/**
 * The request's JSON body.
 * @throws PublishError ERR_REQUEST_INVALID when it is not JSON, not `application/json`, or too large.
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    req.resume()
    throw new PublishError('ERR_REQUEST_INVALID', 'The body must be application/json')
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) {
      req.resume()
      throw new PublishError('ERR_REQUEST_INVALID', `The body is larger than ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new PublishError('ERR_REQUEST_INVALID', 'The body is not valid JSON')
  }
}
