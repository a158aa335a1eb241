import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Standard Webhooks signing (the scheme of Svix and of the Standard Webhooks libraries; Stripe and
 * GitHub sign the same way with other header names): HMAC-SHA256 over `id.timestamp.body`, sent as
 * `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64>`. The
 * timestamp lets a receiver refuse replays; the id lets it drop a delivery it already has.
 * A secret written `whsec_<base64>` is those bytes; any other, its UTF-8 bytes.
 */
export function signatureHeaders(id: string, timestampS: number, body: string, secret: string): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': `v1,${sign(id, timestampS, body, secret)}` }
}

function sign(id: string, timestampS: number, body: string, secret: string): string {
  return createHmac('sha256', secretBytes(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')
}

function secretBytes(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8')
}

/**
 * What a receiver does: true when one of the signatures in `webhook-signature` (space-separated
 * `v1,…`) is ours and the timestamp is within `toleranceS` of `nowS`. For tests and for receivers
 * written in JavaScript.
 */
export function verifySignature(headers: { id: string; timestamp: string; signature: string }, body: string, secret: string, nowS: number, toleranceS = 300): boolean {
  const timestampS = Number(headers.timestamp)
  if (!Number.isInteger(timestampS) || Math.abs(nowS - timestampS) > toleranceS) return false
  const expected = Buffer.from(sign(headers.id, timestampS, body, secret))
  return headers.signature.split(' ').some((entry) => {
    const [version, value = ''] = entry.split(',', 2)
    const given = Buffer.from(value)
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected)
  })
}
