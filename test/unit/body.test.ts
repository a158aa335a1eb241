import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isPublishError } from '../../src/errors.js'
import { readBody } from '../../src/soap/body.js'

const MAX_BYTES = 1_000

/**
 * A node:http server echoing the body readBody returns, or the code of the error it throws. It reads
 * as the SOAP edge does, one microtask after the request event.
 */
function echoServer(): Server {
  return createServer((req, res) => {
    Promise.resolve().then(() => readBody(req, MAX_BYTES)).then(
      (body) => res.end(`body:${body}`),
      (e: unknown) => res.end(`error:${isPublishError(e) ? e.code : String(e)}`),
    )
  })
}

/** One connection: writes each part (pausing between them), then reads answers as they come. */
class RawClient {
  private received = ''
  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true).setEncoding('utf8')
    socket.on('data', (chunk: string) => (this.received += chunk))
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    return new RawClient(socket)
  }

  async send(...parts: (string | Buffer)[]): Promise<void> {
    for (const [i, part] of parts.entries()) {
      if (i > 0) await sleep(30)
      this.socket.write(part)
    }
  }

  /** The body of the `n`th answer on this connection (1-based), once it has arrived. */
  async answer(n: number): Promise<string> {
    for (let waited = 0; waited < 5_000; waited += 10) {
      const answers = [...this.received.matchAll(/\r\n\r\n((?:body|error):[^\r\n]*?)(?=HTTP\/1\.1|$)/g)].map((m) => m[1]!)
      if (answers.length >= n) return answers[n - 1]!
      await sleep(10)
    }
    assert.fail(`no answer ${n}; received: ${this.received}`)
  }

  close(): void {
    this.socket.destroy()
  }
}

const head = (length: number) => `POST /apubi HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: ${length}\r\n\r\n`
const chunkedHead = 'POST /apubi HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n'
const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`

describe('readBody', () => {
  let server: Server
  let port: number
  before(async () => {
    server = echoServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('takes a body that came with its headers, and the connection goes on to the next request', async () => {
    const client = await RawClient.open(port)
    for (let i = 1; i <= 50; i++) {
      const body = `<poll n="${i}">é</poll>`
      await client.send(head(Buffer.byteLength(body)) + body)
      assert.equal(await client.answer(i), `body:${body}`)
    }
    client.close()
  })

  it('waits for a body sent after its headers, or in parts', async () => {
    const client = await RawClient.open(port)
    await client.send(head(11), 'hello world')
    assert.equal(await client.answer(1), 'body:hello world')
    await client.send(head(11) + 'hello', ' wor', 'ld')
    assert.equal(await client.answer(2), 'body:hello world')
    client.close()
  })

  it('reads a chunked body, whole or in parts, and refuses one past the cap', async () => {
    const client = await RawClient.open(port)
    await client.send(chunkedHead + chunk('abc') + chunk('def') + '0\r\n\r\n')
    assert.equal(await client.answer(1), 'body:abcdef')
    await client.send(chunkedHead + chunk('abc'), chunk('def'), '0\r\n\r\n')
    assert.equal(await client.answer(2), 'body:abcdef')
    await client.send(chunkedHead + chunk('x'.repeat(MAX_BYTES)) + chunk('y') + '0\r\n\r\n')
    assert.equal(await client.answer(3), 'error:ERR_REQUEST_TOO_LARGE')
    client.close()
  })

  it('refuses a body announced past the cap before reading it, and one that is not UTF-8', async () => {
    const client = await RawClient.open(port)
    await client.send(head(MAX_BYTES + 1))
    assert.equal(await client.answer(1), 'error:ERR_REQUEST_TOO_LARGE')
    client.close()
    const other = await RawClient.open(port)
    await other.send(Buffer.concat([Buffer.from(head(3)), Buffer.from([0x3c, 0xff, 0x3e])]))
    assert.equal(await other.answer(1), 'error:ERR_REQUEST_INVALID')
    other.close()
  })
})
