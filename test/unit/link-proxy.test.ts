// The far link of the test proxy: what the round-trip figures of the bench and the pipelining tests
// rest on. Only lower bounds on time: the machine is shared.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js'

/** Sends `bytes` through the proxy to an echo server; resolves with what came back and when. */
async function echo(proxy: FaultProxy, bytes: Buffer): Promise<{ back: Buffer; ms: number }> {
  const socket: Socket = connect(proxy.port, proxy.host)
  await once(socket, 'connect')
  const started = performance.now()
  const chunks: Buffer[] = []
  let length = 0
  const done = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= bytes.length) resolve()
    }),
  )
  socket.write(bytes)
  await done
  const ms = performance.now() - started
  socket.destroy()
  return { back: Buffer.concat(chunks), ms }
}

describe('fault proxy: a far link', () => {
  let echoServer: Server
  let port: number
  before(async () => {
    echoServer = createServer((s) => s.pipe(s)).listen(0, '127.0.0.1')
    await once(echoServer, 'listening')
    port = (echoServer.address() as { port: number }).port
  })
  after(() => echoServer.close())

  it('delays each direction: a round trip takes at least twice the delay', async () => {
    const proxy = await startFaultProxy('127.0.0.1', port, { delayMs: 30 })
    try {
      for (let i = 0; i < 3; i++) {
        const { back, ms } = await echo(proxy, Buffer.from(`ping ${i}`))
        assert.equal(back.toString(), `ping ${i}`)
        assert.ok(ms >= 59, `round trip in ${ms.toFixed(1)} ms`)
      }
    } finally {
      await proxy.close()
    }
  })

  it('counts the turns a client waited for, not requests sent before the answers', async () => {
    const proxy = await startFaultProxy('127.0.0.1', port, { delayMs: 5 })
    try {
      const socket = connect(proxy.port, proxy.host)
      await once(socket, 'connect')
      const answer = async (text: string) => {
        socket.write(text)
        let got = ''
        while (got.length < text.length) got += String((await once(socket, 'data'))[0])
      }
      // Three requests, each sent once the answer before it arrived: two turns.
      for (const text of ['a', 'b', 'c']) await answer(text)
      assert.equal(proxy.stats.turns, 2)
      // Three sent together, answered together: one more turn, for the first of them.
      await answer('def')
      assert.equal(proxy.stats.turns, 3)
      socket.destroy()
    } finally {
      await proxy.close()
    }
  })

  it('keeps bytes whole and in order, no faster than its bandwidth', async () => {
    // 2 MB at 20 MB/s each way: at least 100 ms one way, pipelined with the way back.
    const proxy = await startFaultProxy('127.0.0.1', port, { delayMs: 5, bytesPerSecond: 20e6 })
    try {
      const bytes = randomBytes(2e6)
      const { back, ms } = await echo(proxy, bytes)
      assert.ok(back.equals(bytes), 'the same bytes, in the same order')
      assert.ok(ms >= 100, `2 MB in ${ms.toFixed(1)} ms`)
    } finally {
      await proxy.close()
    }
  })

  it('sums the time connections stay open: growing while one is open, still once all are closed', async () => {
    const proxy = await startFaultProxy('127.0.0.1', port, { delayMs: 5 })
    try {
      assert.equal(proxy.connectionSeconds(), 0)
      const socket = connect(proxy.port, proxy.host)
      await once(socket, 'connect')
      const { back } = await echo(proxy, Buffer.from('ping')) // a second connection, closed at once
      assert.equal(back.toString(), 'ping')
      const open = proxy.connectionSeconds()
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.ok(proxy.connectionSeconds() > open, 'the open connection counts while it stays open')
      socket.destroy()
      while (proxy.stats.open > 0) await new Promise((resolve) => setTimeout(resolve, 5))
      const closed = proxy.connectionSeconds()
      assert.ok(closed >= 0.02, `at least the 20 ms waited: ${closed} s`)
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(proxy.connectionSeconds(), closed)
    } finally {
      await proxy.close()
    }
  })
})
