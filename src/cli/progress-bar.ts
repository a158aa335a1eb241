import { AdminClient, type AdminTask } from '../client/index.js'
import { formatBytes, formatDuration } from './format.js'

const BAR_WIDTH = 24

/**
 * One line of progress: bar, percentage, bytes, files, throughput and ETA, as far as the task knows
 * them (a task still listing its files knows no totals yet).
 */
export function renderProgress(task: Pick<AdminTask, 'progress' | 'bytesPerSecond' | 'etaSeconds' | 'state'> & { readonly timings?: { readonly elapsedSeconds: number } }): string {
  const { bytesDone, bytesTotal, filesDone, filesTotal } = task.progress
  const done = task.state === 'succeeded'
  const ended = done || task.state === 'failed'
  const fraction = done ? 1 : bytesTotal > 0 ? Math.min(1, bytesDone / bytesTotal) : 0
  const filled = Math.round(fraction * BAR_WIDTH)
  const parts = [
    `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100).toString().padStart(3)} %`,
    bytesTotal > 0 ? `${formatBytes(bytesDone)} / ${formatBytes(bytesTotal)}` : formatBytes(bytesDone),
  ]
  if (filesTotal > 1) parts.push(`${filesDone}/${filesTotal} files`)
  if (task.bytesPerSecond !== undefined && !done) parts.push(`${formatBytes(task.bytesPerSecond)}/s`)
  if (task.etaSeconds !== undefined && !done) parts.push(`ETA ${formatDuration(task.etaSeconds)}`)
  // The last line sums up: how long the task took from its submission, and the speed that makes.
  if (ended && task.timings) {
    const seconds = task.timings.elapsedSeconds
    parts.push(`in ${formatDuration(seconds)}`)
    if (bytesDone > 0 && seconds > 0) parts.push(`${formatBytes(bytesDone / seconds)}/s on average`)
  }
  return parts.join('  ')
}

/**
 * Redraws the task's progress line on `out` at each poll, from this server's admin API. Other APUBI
 * servers have none (nor does ours answer without the admin token it may require): at the first
 * refusal the bar gives up for good, and the command goes on polling GetTaskStatus alone.
 */
export function progressBar(url: string, token: string | undefined, out: NodeJS.WritableStream) {
  const admin = new AdminClient(url, token)
  let available = true
  let drawn = false
  return {
    async show(taskId: string): Promise<void> {
      if (!available) return
      try {
        const line = renderProgress(await admin.task(taskId))
        out.write(`\r${line}\u001b[K`)
        drawn = true
      } catch {
        available = false
      }
    },
    /** Ends the line, so what follows starts on its own. */
    end(): void {
      if (drawn) out.write('\n')
    },
  }
}
