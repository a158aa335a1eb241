/**
 * The one redaction used by every output: logs, task errors, admin views, CLI, faults.
 * `scheme://user:password@host` keeps the user and loses the password; so does any URL inside text.
 */
const credentialsInUrl = /([a-z][a-z0-9+.-]*:\/\/)([^/?#@\s:]*):([^/?#\s]*)@/gi

export const REDACTED = '***'

export function redact(text: string): string {
  return text.replace(credentialsInUrl, (_, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
}
