// Bodies too large to keep in the repository, made at test time from a few parameters. Each yields
// its bytes in chunks, so that the test never holds 50 MB at once, and says its length up front.
import { randomBytes } from 'node:crypto'
import { deflateSync, gzipSync } from 'node:zlib'

export interface Generated {
  readonly length: number
  chunks(): Iterable<Buffer>
}

const ENVELOPE_START = '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
const ENVELOPE_END = '</soap:Body></soap:Envelope>'
const STATUS_START = `${ENVELOPE_START}<GetTaskStatus xmlns="wfm:APUBI/v1/schemas"><TaskId>`
const STATUS_END = `</TaskId></GetTaskStatus>${ENVELOPE_END}`
const MiB = 1 << 20

/** `head`, then `fill` repeated up to `length` bytes in all, then `tail`. */
function padded(head: string, fill: string, tail: string, length: number): Generated {
  const middle = length - Buffer.byteLength(head) - Buffer.byteLength(tail)
  if (middle < 0) throw new Error(`cannot make ${length} bytes from a ${head.length + tail.length}-byte frame`)
  return {
    length,
    *chunks() {
      yield Buffer.from(head)
      const block = Buffer.from(fill.repeat(Math.ceil(MiB / fill.length)).slice(0, MiB))
      for (let left = middle; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left)
      yield Buffer.from(tail)
    },
  }
}

function whole(bytes: Buffer): Generated {
  return { length: bytes.length, chunks: () => [bytes] }
}

/** The generators the manifest names, with their parameters. */
export const generators: Record<string, (p: Record<string, number | string>) => Generated> = {
  /** A GetTaskStatus whose TaskId makes the body exactly `bytes` long. */
  'long-task-id': (p) => padded(STATUS_START, 'x', STATUS_END, Number(p['bytes'])),
  /** A valid GetTaskStatus for TaskId `padded`, padded with a comment to exactly `bytes`. */
  'padded-status': (p) => padded(`${STATUS_START}padded${STATUS_END}<!--`, ' ', '-->', Number(p['bytes'])),
  /** `depth` nested elements in the Header, closed again, before a GetTaskStatus. */
  'deep-nesting': (p) => {
    const depth = Number(p['depth'])
    return whole(Buffer.from(STATUS_START.replace('<soap:Body>', `<soap:Header>${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}</soap:Header><soap:Body>`) + 'deep' + STATUS_END))
  },
  /** `depth` nested elements in the Header, never closed. */
  'deep-nesting-unclosed': (p) => whole(Buffer.from(`${ENVELOPE_START.replace('<soap:Body>', '<soap:Header>')}${'<a>'.repeat(Number(p['depth']))}`)),
  /** A GetTaskStatus with one attribute of `bytes` characters on the Envelope. */
  'huge-attribute': (p) => {
    const value = 'v'.repeat(Number(p['bytes']))
    return whole(Buffer.from(STATUS_START.replace('<soap:Envelope ', `<soap:Envelope big="${value}" `) + 'huge-attribute' + STATUS_END))
  },
  /**
   * Zeros compressed: gzip as concatenated members of 64 MiB each (a valid gzip stream; each member
   * compresses to 64 KB), deflate as one zlib stream. `decodedMiB` of zeros from a body far below the cap.
   */
  'compression-bomb': (p) => {
    const decodedMiB = Number(p['decodedMiB'])
    if (p['coding'] === 'deflate') return whole(deflateSync(Buffer.alloc(decodedMiB * MiB), { level: 9 }))
    const member = gzipSync(Buffer.alloc(64 * MiB), { level: 9 })
    return whole(Buffer.concat(Array.from({ length: Math.ceil(decodedMiB / 64) }, () => member)))
  },
  /** `bytes` of random (incompressible) data, gzip-compressed: the compressed body itself is over the cap. */
  'gzip-random': (p) => whole(gzipSync(randomBytes(Number(p['bytes'])))),
}
