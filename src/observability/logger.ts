import { pino, type Logger } from 'pino'
import { redact } from './redact.js'

export type { Logger }

/**
 * JSON lines on stdout. Every string that reaches a line passes through `redact`, so a URL with
 * credentials cannot leak through a log call that forgot to redact it.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'apubi' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: (line) => redact(line),
      },
    },
    destination ?? process.stdout,
  )
}
