import type { HostLimiter } from './types.js'

/**
 * A counting semaphore per host. Origins answer "421 too many connections" or throttle when every
 * task opens its own connections, so all tasks of the process draw from the same slots.
 */
export function createHostLimiter(connectionsPerHost: number): HostLimiter {
  const hosts = new Map<string, { used: number; waiting: Array<() => void> }>()

  function release(key: string): void {
    const host = hosts.get(key)
    if (!host) return
    const next = host.waiting.shift()
    if (next) return next()
    host.used--
    if (host.used === 0) hosts.delete(key)
  }

  return {
    async acquire(key, signal) {
      signal.throwIfAborted()
      let host = hosts.get(key)
      if (!host) hosts.set(key, (host = { used: 0, waiting: [] }))
      if (host.used < connectionsPerHost) {
        host.used++
      } else {
        const queue = host.waiting
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => {
            queue.splice(queue.indexOf(grant), 1)
            reject(signal.reason)
          }
          // The slot passes straight from the releasing holder to this waiter: `used` is unchanged.
          const grant = (): void => {
            signal.removeEventListener('abort', onAbort)
            resolve()
          }
          queue.push(grant)
          signal.addEventListener('abort', onAbort, { once: true })
        })
      }
      let released = false
      return () => {
        if (released) return
        released = true
        release(key)
      }
    },
    inUse() {
      return [...hosts].map(([host, { used, waiting }]) => ({ host, connections: used, waiting: waiting.length }))
    },
  }
}
