import { pino, type Logger } from 'pino'
import { thisInstance } from './instance.js'
import { prettyLogLines } from './pretty.js'
import { redactWith } from './redact.js'

export type { Logger }

/**
 * What stdout may hold unwritten when its reader (a log collector) falls behind: past it, lines are
 * dropped rather than the server's memory grown or its requests stalled.
 */
const STDOUT_BUFFER_BYTES = 16 * 1024 * 1024

/**
 * JSON lines on `destination`, by default stdout. Every line passes through `redact` as a whole,
 * error causes, stacks and nested objects included, so a URL with credentials cannot leak through a
 * log call that forgot to redact it; `secrets` (the configuration's passwords and keys, see
 * `secretValuesIn`) are hidden wherever they appear. `pretty` writes readable lines instead
 * (pretty.ts), for a terminal.
 *
 * Stdout is written asynchronously (pino's SonicBoom destination): a line costs the request that logs
 * it a copy into a buffer, not a write system call. pino writes what is buffered synchronously when
 * the process exits, by `process.exit`, the end of the event loop or an uncaught error.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, secrets: readonly string[] = [], format: 'json' | 'pretty' = 'json'): Logger {
  const redactLine = redactWith(secrets)
  const out = destination ?? pino.destination({ dest: 1, sync: false, maxLength: STDOUT_BUFFER_BYTES })
  const terminal = destination ? (destination as { isTTY?: boolean }).isTTY === true : process.stdout.isTTY
  return pino(
    {
      level,
      // service, version, instance: what a log aggregator groups and filters lines by.
      base: { ...thisInstance() },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: redactLine,
      },
    },
    format === 'pretty' ? prettyLogLines(out, terminal) : out,
  )
}
