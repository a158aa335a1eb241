/**
 * Log lines for people at a terminal: `12:34:56.789 INFO  soap request operation=LoadAsset outcome=ok`,
 * an error's stack indented below. It reads the JSON lines the logger writes (already redacted) and
 * writes one readable line each; a line that is not JSON passes unchanged.
 */
export function prettyLogLines(out: NodeJS.WritableStream, colors = false): { write(line: string): boolean } {
  return { write: (text: string) => out.write(text.split('\n').filter(Boolean).map((line) => formatLine(line, colors)).join('')) }
}

/** Fields every line has, or that the line's head already shows. */
const HEAD_FIELDS = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'service', 'version', 'instance'])

const LEVEL_COLORS: Record<string, string> = { fatal: '35', error: '31', warn: '33', info: '32', debug: '36', trace: '90' }

export function formatLine(line: string, colors = false): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line) as Record<string, unknown>
  } catch {
    return `${line}\n`
  }
  if (typeof entry !== 'object' || entry === null) return `${line}\n`
  const level = String(entry['level'] ?? '')
  const time = typeof entry['time'] === 'number' ? new Date(entry['time']).toISOString().slice(11, 23) : ''
  const paint = (code: string | undefined, text: string) => (colors && code ? `\u001b[${code}m${text}\u001b[0m` : text)
  const fields: string[] = []
  let stack = ''
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(key) || value === undefined) continue
    if (key === 'err' && typeof value === 'object' && value !== null) {
      const err = value as { message?: unknown; stack?: unknown }
      fields.push(`err=${JSON.stringify(String(err.message ?? ''))}`)
      if (typeof err.stack === 'string') stack = err.stack.split('\n').slice(1).map((l) => `    ${l.trim()}\n`).join('')
      continue
    }
    fields.push(`${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`)
  }
  const head = `${time} ${paint(LEVEL_COLORS[level], level.toUpperCase().padEnd(5))} ${String(entry['msg'] ?? '')}`
  return `${head}${fields.length > 0 ? ` ${paint('90', fields.join(' '))}` : ''}\n${stack}`
}
