import { originRecord, type OriginProgress } from '../transfer/index.js'
import type { LiveProgress } from './throughput.js'
import type { PublishedFile, Task } from './types.js'

/**
 * How each origin of a mirrored task stands: while it runs here, as its transfer reports; else from
 * the records of its files and of its completion. `bases`: the origins' base URLs, redacted.
 */
export function originOutcomes(task: Task, files: readonly PublishedFile[], live: LiveProgress | undefined, bases: readonly string[]): OriginProgress[] {
  const reported = (live as { origins?: readonly OriginProgress[] } | undefined)?.origins
  if (reported && task.state === 'running') return [...reported]
  return bases.map((origin, i) => {
    const own = originRecord(i, '')
    const published = files.filter((f) => f.rel.startsWith(own))
    const bytes = published.reduce((total, f) => total + f.size, 0)
    const done = files.some((f) => f.rel === originRecord(i))
    const state = done ? 'done' : task.state === 'failed' ? 'failed' : 'pending'
    return { origin, state, bytesDone: bytes, bytesTotal: done ? bytes : 0, filesDone: published.length, filesTotal: done ? published.length : 0 }
  })
}
