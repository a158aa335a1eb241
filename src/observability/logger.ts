import { pino, type Logger } from 'pino'
import { thisInstance } from './instance.js'
import { prettyLogLines } from './pretty.js'
import { redactWith } from './redact.js'

export type { Logger }

/**
 * JSON lines on stdout. Every line passes through `redact` as a whole, error causes, stacks and
 * nested objects included, so a URL with credentials cannot leak through a log call that forgot to
 * redact it; `secrets` (the configuration's passwords and keys, see `secretValuesIn`) are hidden
 * wherever they appear. `pretty` writes readable lines instead (pretty.ts), for a terminal.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, secrets: readonly string[] = [], format: 'json' | 'pretty' = 'json'): Logger {
  const redactLine = redactWith(secrets)
  const out = destination ?? process.stdout
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
    format === 'pretty' ? prettyLogLines(out, (out as { isTTY?: boolean }).isTTY === true) : out,
  )
}
