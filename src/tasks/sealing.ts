import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { PublishError } from '../errors.js'
import { redact } from '../observability/index.js'

/**
 * Sealing: the credentials of task URLs encrypted at rest, whatever the store. A value is sealed as
 * `sealed:v1:<key id>:<base64url(iv ‖ ciphertext ‖ tag)>`, AES-256-GCM with a random 96-bit IV per
 * value and the `sealed:v1:<key id>` prefix as associated data, so neither part can be swapped or
 * altered unnoticed. The key id names the key (8 hex digits derived from it, revealing nothing of it)
 * so that a value sealed with another key is told apart from a damaged one.
 *
 * The prefix cannot collide with a plain value: it reads as a URL of the scheme `sealed`, which no
 * backend serves, so a request naming it is refused before anything is stored.
 */
export interface Sealer {
  /** Whether a secret key is configured; without one, `seal` returns every value unchanged. */
  readonly keyed: boolean
  /** Seals a value that carries credentials (what `redact` would hide); returns any other unchanged. */
  seal(value: string): string
  /**
   * The plain value of a sealed one; any other value unchanged.
   * @throws PublishError ERR_SECRET_KEY when it was sealed with another key, no key is configured,
   *   or it does not authenticate (altered or damaged).
   */
  unseal(value: string): string
  /**
   * A digest of `text` that recognises identical requests: an HMAC-SHA256 under a key derived from
   * the secret key, so that the stored digests of URLs with passwords allow no offline guessing;
   * plain SHA-256 without a key (as before keys existed, so active tasks keep deduplicating).
   */
  digest(text: string): string
  /**
   * Tells keys apart without revealing them: an HMAC of a constant under the key ('none' without a
   * key). Instances sharing a database must show the same one (postgres/key-check.ts).
   */
  readonly fingerprint: string
}

const PREFIX = 'sealed:v1:'
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32

/** What every setting and file holding the key must look like: 32 bytes as hex or base64(url). */
const SECRET_KEY_TEXT = /^(?:[0-9a-f]{64}|[A-Za-z0-9+/_-]{43}=?)$/i
const KEY_HELP = 'must be 32 bytes written as 64 hex digits or as base64 (make one with: openssl rand -base64 32)'

export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX)
}

/**
 * The secret key from its settings (APUBI_SECRET_KEY, or the file APUBI_SECRET_KEY_FILE); undefined
 * when neither is set. Error messages never show the key or the file's content.
 * @throws PublishError ERR_CONFIG_INVALID when both are set, or the file is unreadable or malformed.
 */
export function loadSecretKey(settings: { readonly secretKey?: string | undefined; readonly secretKeyFile?: string | undefined }): Buffer | undefined {
  const { secretKey, secretKeyFile } = settings
  if (secretKey !== undefined && secretKeyFile !== undefined) {
    throw new PublishError('ERR_CONFIG_INVALID', 'Invalid configuration: set APUBI_SECRET_KEY or APUBI_SECRET_KEY_FILE, not both')
  }
  if (secretKey !== undefined) return decodeKey(secretKey, 'APUBI_SECRET_KEY')
  if (secretKeyFile === undefined) return undefined
  let text: string
  try {
    text = readFileSync(secretKeyFile, 'utf8')
  } catch (e) {
    throw new PublishError('ERR_CONFIG_INVALID', `Invalid configuration: cannot read APUBI_SECRET_KEY_FILE ${secretKeyFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  return decodeKey(text, `APUBI_SECRET_KEY_FILE ${secretKeyFile}`)
}

function decodeKey(text: string, where: string): Buffer {
  const trimmed = text.trim()
  if (!SECRET_KEY_TEXT.test(trimmed)) {
    throw new PublishError('ERR_CONFIG_INVALID', `Invalid configuration: ${where} ${KEY_HELP} (found ${trimmed.length} characters; the value is not shown)`)
  }
  const key = trimmed.length === 64 ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  if (key.length !== KEY_BYTES) throw new PublishError('ERR_CONFIG_INVALID', `Invalid configuration: ${where} ${KEY_HELP}`)
  return key
}

/** A sealer under `key` (32 bytes), or without a key: then nothing is sealed and nothing sealed opens. */
export function createSealer(key?: Buffer): Sealer {
  if (key === undefined) return unkeyed
  if (key.length !== KEY_BYTES) throw new RangeError(`a secret key has ${KEY_BYTES} bytes, not ${key.length}`)
  // One key per purpose, derived from the secret key (HKDF): encryption, request digests, the key id.
  const derive = (purpose: string, bytes: number) => Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `apubi ${purpose}`, bytes))
  const sealKey = derive('seal v1', KEY_BYTES)
  const digestKey = derive('dedupe v1', KEY_BYTES)
  const keyId = derive('key id', 4).toString('hex')
  const header = `${PREFIX}${keyId}:`
  return {
    keyed: true,
    fingerprint: createHmac('sha256', key).update('apubi secret key fingerprint v1').digest('base64url'),
    seal(value) {
      if (isSealed(value) || redact(value) === value) return value
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', sealKey, iv).setAAD(Buffer.from(header))
      const sealed = Buffer.concat([iv, cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()])
      return header + sealed.toString('base64url')
    },
    unseal(value) {
      if (!isSealed(value)) return value
      const [, , id = '', body = ''] = value.split(':')
      if (id !== keyId) throw sealedWithAnotherKey(id, keyId)
      const bytes = Buffer.from(body, 'base64url')
      if (bytes.length < IV_BYTES + TAG_BYTES) throw damaged()
      const decipher = createDecipheriv('aes-256-gcm', sealKey, bytes.subarray(0, IV_BYTES)).setAAD(Buffer.from(header))
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
      try {
        return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
      } catch {
        throw damaged()
      }
    },
    digest(text) {
      return createHmac('sha256', digestKey).update(text).digest('base64url')
    },
  }
}

const unkeyed: Sealer = {
  keyed: false,
  fingerprint: 'none',
  seal: (value) => value,
  unseal(value) {
    if (!isSealed(value)) return value
    throw new PublishError(
      'ERR_SECRET_KEY',
      `A URL of this task is sealed (key id ${value.split(':')[2] ?? '?'}), but no secret key is configured: set APUBI_SECRET_KEY or APUBI_SECRET_KEY_FILE to the key it was sealed with`,
    )
  },
  digest: (text) => createHash('sha256').update(text).digest('base64url'),
}

function sealedWithAnotherKey(found: string, configured: string): PublishError {
  return new PublishError(
    'ERR_SECRET_KEY',
    `A URL of this task was sealed with another secret key (key id ${found}; the configured key has id ${configured}): configure the key it was sealed with`,
  )
}

function damaged(): PublishError {
  return new PublishError('ERR_SECRET_KEY', 'A sealed URL of this task does not authenticate under the configured secret key: the database was altered or damaged')
}
