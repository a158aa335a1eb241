import { createServer, connect, type Socket } from 'node:net'

/** What the proxy does to the next connection(s) it forwards; `undefined` fields mean "pass through". */
export interface Fault {
  /** Reset both sides once this many bytes went from the server to the client (downloads). */
  resetAfterDownBytes?: number
  /** Reset both sides once this many bytes went from the client to the server (uploads). */
  resetAfterUpBytes?: number
  /** After this many bytes in either direction, stop forwarding (a stalled server) but keep the sockets open. */
  stallAfterBytes?: number
  /** Forward at most this many bytes per second in each direction (a slow link). */
  bytesPerSecond?: number
  /** How many connections the fault applies to before the proxy passes traffic through again. */
  times?: number
}

export interface FaultProxy {
  readonly host: string
  readonly port: number
  /** Faults applied to connections opened from now on. */
  inject(fault: Fault): void
  /** Connections opened so far, and how many a fault hit. */
  readonly stats: { connections: number; faulted: number }
  close(): Promise<void>
}

/**
 * A TCP proxy between our server and a storage server that injects the failures real networks
 * have: a reset mid-transfer, a stall, a slow link. Each fault is spent on `times` connections.
 */
export async function startFaultProxy(targetHost: string, targetPort: number): Promise<FaultProxy> {
  let pending: (Fault & { times: number }) | undefined
  const stats = { connections: 0, faulted: 0 }
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    stats.connections++
    let fault: Fault | undefined
    if (pending && pending.times > 0) {
      pending.times--
      fault = pending
      stats.faulted++
    }
    const upstream = connect(targetPort, targetHost)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    const counted = { up: 0, down: 0 }
    const forward = (from: Socket, to: Socket, direction: 'up' | 'down') => {
      from.on('data', (chunk: Buffer) => {
        counted[direction] += chunk.length
        const limit = direction === 'up' ? fault?.resetAfterUpBytes : fault?.resetAfterDownBytes
        if (limit !== undefined && counted[direction] >= limit) {
          client.resetAndDestroy()
          upstream.resetAndDestroy()
          return
        }
        if (fault?.stallAfterBytes !== undefined && counted.up + counted.down >= fault.stallAfterBytes) {
          from.pause() // nothing more flows; the sockets stay open until someone gives up
          return
        }
        if (!to.write(chunk)) from.pause()
        if (fault?.bytesPerSecond) {
          from.pause()
          setTimeout(() => from.resume(), (chunk.length / fault.bytesPerSecond) * 1000)
        }
      })
      to.on('drain', () => from.resume())
      from.on('end', () => to.end())
    }
    forward(client, upstream, 'up')
    forward(upstream, client, 'down')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    host: '127.0.0.1',
    port,
    stats,
    inject: (fault) => (pending = { ...fault, times: fault.times ?? 1 }),
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
