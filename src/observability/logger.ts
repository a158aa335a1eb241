import { pino, type Logger } from 'pino'
import { clip } from './clip.js'
import { thisInstance } from './instance.js'
import { prettyLogLines } from './pretty.js'
import { redactWith } from './redact.js'

export type { Logger }

/**
 * JSON lines on stdout. Every line passes through `redact` as a whole, error causes, stacks and
 * nested objects included, so a URL with credentials cannot leak through a log call that forgot to
 * redact it; `secrets` (the configuration's passwords and keys, see `secretValuesIn`) are hidden
 * wherever they appear. A text field longer than 1,024 characters is cut, marked: a client's 60 KB
 * TaskId or URL costs no 60 KB line. `pretty` writes readable lines instead (pretty.ts), for a terminal.
 *
 * Stdout is written synchronously through pino's own destination (SonicBoom), which waits out a
 * full pipe: a line logged before an answer is sent is out before the answer, and none is lost when
 * the process ends. `process.stdout` queues writes to a full pipe in memory instead, and
 * `process.exit` dropped them (a slow log reader lost 4,833 of 5,000 lines). At info the lines are
 * few (GetTaskStatus polls are logged at debug), so a write system call each costs little.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, secrets: readonly string[] = [], format: 'json' | 'pretty' = 'json'): Logger {
  const redactLine = redactWith(secrets)
  const out = destination ?? pino.destination({ dest: 1, sync: true })
  const terminal = destination ? (destination as { isTTY?: boolean }).isTTY === true : process.stdout.isTTY
  return pino(
    {
      level,
      // service, version, instance: what a log aggregator groups and filters lines by.
      base: { ...thisInstance() },
      formatters: { level: (label) => ({ level: label }), log: clipFields },
      hooks: {
        streamWrite: redactLine,
      },
    },
    format === 'pretty' ? prettyLogLines(out, terminal) : out,
  )
}

/** Longest text field of a log line: room for a clipped client value and what surrounds it. */
const MAX_FIELD_CHARS = 1024

function clipFields(fields: Record<string, unknown>): Record<string, unknown> {
  let clipped: Record<string, unknown> | undefined
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string' && value.length > MAX_FIELD_CHARS) (clipped ??= { ...fields })[name] = clip(value, MAX_FIELD_CHARS)
  }
  return clipped ?? fields
}
