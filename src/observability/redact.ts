/**
 * The one redaction used by every output: logs, task errors, admin views, CLI, faults.
 * `scheme://user:password@host` keeps the user and loses the password; so does any URL inside text,
 * and query parameters named like credentials (`?token=…`, `X-Amz-Signature=…`) lose their values.
 * In JSON text (a log line, an error's serialised properties), the value of a field whose name says
 * it holds a secret (`password`, `secretAccessKey`, `privateKey`, `authorization`, `token`, …) goes
 * too, at any depth, so that an object logged whole cannot carry a decoded password out.
 */
// The lookbehind starts a scheme only where a run of scheme characters starts: without it, a long
// run of letters with no '://' (a 64 KiB TaskId) is rescanned from each of its characters, which
// took 17 s for 64 KiB.
const credentialsInUrl = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)([^/?#@\s:]*):([^/?#\s]*)@/gi
/**
 * Query parameters that carry a credential: tokens of CDN and HLS origins (`token`, Akamai `hdnts`,
 * CloudFront `Signature`/`Policy`/`Key-Pair-Id`), signed S3 URLs (`X-Amz-Signature`,
 * `X-Amz-Credential`, `X-Amz-Security-Token`), API keys.
 */
const queryParameter = /([?&;])([a-z0-9_.-]*)=([^&#\s"'<>]*)/gi
const secretParameterName = /token|signature|secret|password|passwd|credential|api_?key|auth|^(?:sig|key|hdnts|policy|key-pair-id)$/i
const secretField = /("(?:[a-z_]*password|passphrase|secret[a-z_]*|private_?key|authorization|[a-z_]*token)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi

export const REDACTED = '***'

export function redact(text: string): string {
  return text
    .replace(credentialsInUrl, (_, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(queryParameter, (whole, mark: string, name: string) => (secretParameterName.test(name) ? `${mark}${name}=${REDACTED}` : whole))
    .replace(secretField, `$1"${REDACTED}"`)
}

/**
 * Shorter secrets are not searched for in text: replacing every "abc" would garble the output, and
 * their URL and field forms are redacted anyway.
 */
const MIN_SECRET_LENGTH = 4

/**
 * `redact`, and besides every occurrence of these known secrets (the configuration's passwords and
 * keys), as written, percent-encoded and JSON-escaped: an error message that quotes one in plain
 * text, outside a URL, loses it too.
 */
export function redactWith(secrets: readonly string[]): (text: string) => string {
  const forms = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH).flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)]))]
    // Longest first, so that a secret containing another is replaced whole.
    .sort((a, b) => b.length - a.length)
  if (forms.length === 0) return redact
  return (text) => {
    let out = redact(text)
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(REDACTED)
    return out
  }
}

const secretName = /password|passphrase|secret|private_?key|token/i
const pathName = /(file|path|dir)$/i
const absoluteUrl = /^[a-z][a-z0-9+.-]*:\/\//i

/**
 * The secret values held in a configuration object, for `redactWith`: every string under a key
 * that names a secret (not a file path), and the password of every URL with credentials, decoded.
 */
export function secretValuesIn(value: unknown, key = ''): string[] {
  if (typeof value === 'string') {
    const found = secretName.test(key) && !pathName.test(key) ? [value] : []
    if (absoluteUrl.test(value)) found.push(...urlPasswords(value))
    return found
  }
  if (Array.isArray(value)) return value.flatMap((v) => secretValuesIn(v, key))
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => secretValuesIn(v, k))
  return []
}

function urlPasswords(url: string): string[] {
  try {
    const { password } = new URL(url)
    if (!password) return []
    let decoded = password
    try {
      decoded = decodeURIComponent(password)
    } catch {
      // A malformed escape: the raw form is all there is.
    }
    return [...new Set([password, decoded])]
  } catch {
    return []
  }
}
