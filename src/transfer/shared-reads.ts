import { PassThrough, type Readable } from 'node:stream'
import type { Backend } from '../backends/index.js'
import { overriding } from './backend-override.js'

/**
 * How long the first copy to ask for a file waits for the other origins' copies to ask too. Past it,
 * those that asked share one read, and a late one reads on its own: a file already on its origin
 * (skipped), or resumed from another offset, is never asked for.
 */
const RENDEZVOUS_MS = 3_000

interface Asker {
  readonly backend: Backend
  readonly signal: AbortSignal
  resolve(stream: Readable): void
  reject(error: unknown): void
}

/**
 * One source read for the copies of one file to several origins. Each origin's publish reads through
 * its own `view`; reads of the same path from the same offset are met and served by one stream, teed
 * to every copy at the pace of the slowest (a copy that fails drops out; the others go on).
 */
export class SharedReads {
  private readonly active: Set<number>
  private readonly waiting = new Map<string, { readonly askers: Map<number, Asker>; readonly timer: NodeJS.Timeout }>()
  /** Reads already served: someone asking again (late, or a second attempt) reads alone at once. */
  private readonly served = new Set<string>()

  constructor(participants: number) {
    this.active = new Set(Array.from({ length: participants }, (_, i) => i))
  }

  /** `backend` of participant `index`, its reads met with the others'. */
  view(backend: Backend, index: number): Backend {
    if (this.active.size < 2) return backend
    return overriding(backend, 'read', (path, signal, offset = 0) => this.read(index, backend, path, signal, offset))
  }

  /** Participant `index` asks for nothing more: reads waiting for it go ahead without it. */
  leave(index: number): void {
    this.active.delete(index)
    for (const key of [...this.waiting.keys()]) this.serveIfComplete(key)
  }

  private read(index: number, backend: Backend, path: string, signal: AbortSignal, offset: number): Promise<Readable> {
    const key = `${offset}:${path}`
    if (this.served.has(key) || this.active.size < 2) return backend.read(path, signal, offset)
    return new Promise((resolve, reject) => {
      let entry = this.waiting.get(key)
      if (!entry) {
        entry = { askers: new Map(), timer: setTimeout(() => this.serve(key), RENDEZVOUS_MS) }
        this.waiting.set(key, entry)
      }
      entry.askers.set(index, { backend, signal, resolve, reject })
      this.serveIfComplete(key)
    })
  }

  private serveIfComplete(key: string): void {
    const entry = this.waiting.get(key)
    if (entry && [...this.active].every((i) => entry.askers.has(i))) this.serve(key)
  }

  /** Opens the one read (through the first asker's backend) and tees it to every asker. */
  private serve(key: string): void {
    const entry = this.waiting.get(key)
    if (!entry) return
    clearTimeout(entry.timer)
    this.waiting.delete(key)
    this.served.add(key)
    const askers = [...entry.askers.values()]
    const first = askers[0]!
    const colon = key.indexOf(':')
    first.backend.read(key.slice(colon + 1), first.signal, Number(key.slice(0, colon))).then(
      (stream) => {
        if (askers.length === 1) return first.resolve(stream)
        const branches = askers.map(() => new PassThrough())
        tee(stream, branches)
        askers.forEach((asker, i) => asker.resolve(branches[i]!))
      },
      (error: unknown) => askers.forEach((asker) => asker.reject(error)),
    )
  }
}

/**
 * Writes what `source` gives to every branch, pausing while any branch is full. A branch destroyed
 * (its copy failed) is dropped; once none is left the source is destroyed. A source error ends every branch with it.
 */
function tee(source: Readable, branches: PassThrough[]): void {
  const live = new Set(branches)
  const full = new Set<PassThrough>()
  for (const branch of branches) {
    branch.on('drain', () => {
      full.delete(branch)
      if (full.size === 0) source.resume()
    })
    branch.on('close', () => {
      live.delete(branch)
      full.delete(branch)
      if (live.size === 0) source.destroy()
      else if (full.size === 0) source.resume()
    })
  }
  source.on('data', (chunk: Buffer) => {
    for (const branch of live) if (!branch.write(chunk)) full.add(branch)
    if (full.size > 0) source.pause()
  })
  source.on('end', () => live.forEach((branch) => branch.end()))
  source.on('error', (error) => live.forEach((branch) => branch.destroy(error)))
}
