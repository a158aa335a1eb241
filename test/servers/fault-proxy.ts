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

/**
 * A far link, applied to every connection in both directions: each chunk arrives `delayMs` after it
 * was sent, and no faster than `bytesPerSecond` allows after the one before it (a round trip then
 * costs at least 2 × `delayMs`).
 */
export interface Link {
  readonly delayMs: number
  readonly bytesPerSecond?: number
}

export interface FaultProxy {
  readonly host: string
  readonly port: number
  /** Faults applied to connections opened from now on. */
  inject(fault: Fault): void
  /**
   * Connections opened so far, and how many a fault hit. `turns`: over all connections, how often
   * the client sent again after something reached it from the server — each a round trip the
   * client waited for, unless it was sending anyway (pipelined requests count their replies too).
   * `open`: connections open now; `peak`: the most open at once.
   */
  readonly stats: { connections: number; faulted: number; turns: number; open: number; peak: number }
  /** How long connections have been open, summed over all of them so far (those still open up to now), in seconds. */
  connectionSeconds(): number
  close(): Promise<void>
}

/** Bytes a direction may hold in flight on the link before the sender is paused. */
const LINK_WINDOW_BYTES = 4 << 20

/**
 * A TCP proxy between our server and a storage server that injects the failures real networks
 * have: a reset mid-transfer, a stall, a slow link. Each fault is spent on `times` connections.
 * With `link`, every connection also crosses a far link: latency, and a bandwidth of its own per
 * direction. TCP's own handshake is not delayed: what is counted is the protocols' round trips.
 */
export async function startFaultProxy(targetHost: string, targetPort: number, link?: Link): Promise<FaultProxy> {
  let pending: (Fault & { times: number }) | undefined
  const stats = { connections: 0, faulted: 0, turns: 0, open: 0, peak: 0 }
  const sockets = new Set<Socket>()
  // When each open client connection opened; the time of those closed, summed.
  const openedAt = new Map<Socket, number>()
  let closedMs = 0
  const server = createServer((client) => {
    stats.connections++
    stats.peak = Math.max(stats.peak, ++stats.open)
    openedAt.set(client, performance.now())
    client.once('close', () => {
      stats.open--
      closedMs += performance.now() - openedAt.get(client)!
      openedAt.delete(client)
    })
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
    let stalled = false
    // Whether the server's bytes reached the client since the client last sent.
    let answered = false
    const reached = (direction: 'up' | 'down'): void => {
      if (direction === 'down') answered = true
    }
    const forward = (from: Socket, to: Socket, direction: 'up' | 'down') => {
      from.on('data', (chunk: Buffer) => {
        counted[direction] += chunk.length
        if (direction === 'up' && answered) {
          stats.turns++
          answered = false
        }
        const limit = direction === 'up' ? fault?.resetAfterUpBytes : fault?.resetAfterDownBytes
        if (limit !== undefined && counted[direction] >= limit) {
          client.resetAndDestroy()
          upstream.resetAndDestroy()
          return
        }
        if (fault?.stallAfterBytes !== undefined && counted.up + counted.down >= fault.stallAfterBytes) {
          stalled = true
          from.pause() // nothing more flows; the sockets stay open until someone gives up
          return
        }
        if (link) return delay(chunk)
        reached(direction)
        if (!to.write(chunk)) from.pause()
        if (fault?.bytesPerSecond) {
          from.pause()
          setTimeout(() => from.resume(), (chunk.length / fault.bytesPerSecond) * 1000)
        }
      })
      // The far link: chunks arrive in order, each at its time, from one queue with one timer; the
      // sender pauses while more than a window is in flight, as TCP's window would stop it.
      const queue: Array<{ chunk: Buffer; arrives: number }> = []
      let departs = 0
      let inFlight = 0
      let ended = false
      let timer: NodeJS.Timeout | undefined
      const resumeIfRoom = (): void => {
        if (!stalled && inFlight <= LINK_WINDOW_BYTES && !to.writableNeedDrain) from.resume()
      }
      const deliver = (): void => {
        timer = undefined
        while (queue.length > 0 && queue[0]!.arrives <= performance.now()) {
          const { chunk } = queue.shift()!
          inFlight -= chunk.length
          if (!to.destroyed) to.write(chunk)
          reached(direction)
        }
        if (queue.length > 0) timer = setTimeout(deliver, queue[0]!.arrives - performance.now())
        else if (ended) to.end()
        resumeIfRoom()
      }
      const delay = (chunk: Buffer): void => {
        const now = performance.now()
        // On the wire once the chunks before it are; there for as long as the bandwidth takes.
        departs = Math.max(now, departs) + (link?.bytesPerSecond ? (chunk.length / link.bytesPerSecond) * 1000 : 0)
        queue.push({ chunk, arrives: departs + link!.delayMs })
        inFlight += chunk.length
        if (inFlight > LINK_WINDOW_BYTES) from.pause()
        timer ??= setTimeout(deliver, departs + link!.delayMs - now)
      }
      to.on('drain', () => (link ? resumeIfRoom() : from.resume()))
      from.on('end', () => {
        ended = true
        if (!link || queue.length === 0) to.end()
      })
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
    connectionSeconds: () => {
      const now = performance.now()
      let ms = closedMs
      for (const opened of openedAt.values()) ms += now - opened
      return ms / 1000
    },
    inject: (fault) => (pending = { ...fault, times: fault.times ?? 1 }),
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
