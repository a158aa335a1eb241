import type { Backend } from '../backends/index.js'

/**
 * `backend` with one method replaced; every other member is the backend's own, bound to it (a layer
 * such as a throttle or shared reads, without touching the backend).
 */
export function overriding<K extends keyof Backend>(backend: Backend, key: K, replacement: Backend[K]): Backend {
  return new Proxy(backend, {
    get(target, property) {
      if (property === key) return replacement
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
