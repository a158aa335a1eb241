// Sealing (src/tasks/sealing.ts): task URLs with credentials encrypted at rest under the secret key,
// the key read from its settings without ever being shown, and the keyed digest of requests.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.js'
import { createSealer, isSealed, loadSecretKey } from '../../src/tasks/sealing.js'
import { thrownMessage } from './thrown.js'

const KEY = randomBytes(32)
const OTHER_KEY = randomBytes(32)
const URL_WITH_PASSWORD = 'ftp://editor:s3cret@origin.example:21/in/movie.ts'


/** `sealed` with the byte at `index` of its encrypted part flipped. */
function flipByte(sealed: string, index: number): string {
  const cut = sealed.lastIndexOf(':') + 1
  const bytes = Buffer.from(sealed.slice(cut), 'base64url')
  bytes[index] = bytes[index]! ^ 0x01
  return sealed.slice(0, cut) + bytes.toString('base64url')
}

describe('sealing with a key', () => {
  const sealer = createSealer(KEY)

  it('seals a URL with a password into versioned text that holds neither the password nor the URL, and unseals it back', () => {
    const sealed = sealer.seal(URL_WITH_PASSWORD)
    assert.match(sealed, /^sealed:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+$/)
    assert.ok(isSealed(sealed))
    assert.doesNotMatch(sealed, /s3cret|origin\.example|editor/)
    assert.equal(sealer.unseal(sealed), URL_WITH_PASSWORD)
  })

  it('round-trips any text: non-ASCII, encoded characters, long values', () => {
    for (const value of ['sftp://d%C3%A9ploy:p%40ss%3Aw%2Frd@10.0.0.7:22/%2Fsrv/vidéo/', `https://u:${'x'.repeat(5000)}@h/a?token=1`, 's3://AKIA:wJalr%2FK7@bucket/key.ts']) {
      assert.equal(sealer.unseal(sealer.seal(value)), value)
    }
  })

  it('uses a random IV per value: sealing the same value twice gives two different texts, both unsealing', () => {
    const first = sealer.seal(URL_WITH_PASSWORD)
    const second = sealer.seal(URL_WITH_PASSWORD)
    assert.notEqual(first, second)
    const iv = (sealed: string) => Buffer.from(sealed.slice(sealed.lastIndexOf(':') + 1), 'base64url').subarray(0, 12).toString('hex')
    assert.notEqual(iv(first), iv(second))
    assert.equal(sealer.unseal(first), URL_WITH_PASSWORD)
    assert.equal(sealer.unseal(second), URL_WITH_PASSWORD)
  })

  it('detects tampering with the IV, the ciphertext or the tag, and refuses with ERR_SECRET_KEY', () => {
    const sealed = sealer.seal(URL_WITH_PASSWORD)
    const length = Buffer.from(sealed.slice(sealed.lastIndexOf(':') + 1), 'base64url').length
    for (const index of [0, 11, 12, 20, length - 16, length - 1]) {
      const message = thrownMessage('ERR_SECRET_KEY', () => sealer.unseal(flipByte(sealed, index)))
      assert.equal(message, 'A sealed URL of this task does not authenticate under the configured secret key: the database was altered or damaged')
    }
  })

  it('refuses a truncated or an empty sealed value as damaged, not with a crash', () => {
    const sealed = sealer.seal(URL_WITH_PASSWORD)
    for (const broken of [sealed.slice(0, sealed.lastIndexOf(':') + 10), sealed.slice(0, sealed.lastIndexOf(':') + 1)]) {
      assert.match(thrownMessage('ERR_SECRET_KEY', () => sealer.unseal(broken)), /does not authenticate/)
    }
  })

  it('refuses a value sealed with another key, naming both key ids and neither key', () => {
    const foreign = createSealer(OTHER_KEY).seal(URL_WITH_PASSWORD)
    const foreignId = foreign.split(':')[2]!
    const ownId = sealer.seal(URL_WITH_PASSWORD).split(':')[2]!
    assert.notEqual(foreignId, ownId)
    const message = thrownMessage('ERR_SECRET_KEY', () => sealer.unseal(foreign))
    assert.equal(
      message,
      `A URL of this task was sealed with another secret key (key id ${foreignId}; the configured key has id ${ownId}): configure the key it was sealed with`,
    )
    for (const key of [KEY, OTHER_KEY]) {
      assert.ok(!message.includes(key.toString('hex')) && !message.includes(key.toString('base64')))
    }
  })

  it('refuses a value whose key id was rewritten to the configured one (the id is authenticated too)', () => {
    const ownId = sealer.seal(URL_WITH_PASSWORD).split(':')[2]!
    const foreign = createSealer(OTHER_KEY).seal(URL_WITH_PASSWORD)
    const relabelled = foreign.replace(/^sealed:v1:[0-9a-f]{8}:/, `sealed:v1:${ownId}:`)
    assert.match(thrownMessage('ERR_SECRET_KEY', () => sealer.unseal(relabelled)), /does not authenticate/)
  })

  const untouched: Array<[what: string, value: string]> = [
    ['a relative destination', 'Folder_01/movie.ts'],
    ['a file URL', 'file:///srv/cdn/movie.ts'],
    ['a URL without credentials', 'ftp://origin.example/in/movie.ts'],
    ['a URL with a user only (the password comes from the credentials setting)', 'sftp://deploy@origin.example/srv/in/'],
    ['an HTTP URL with a query that holds no credential', 'https://cdn.example/a.m3u8?start=10&bitrate=high'],
  ]
  for (const [what, value] of untouched) {
    it(`leaves ${what} as it is, and reads it back as it is`, () => {
      assert.equal(sealer.seal(value), value)
      assert.equal(sealer.unseal(value), value)
    })
  }

  it('seals a URL whose query carries a token, as it would a password', () => {
    const tokenUrl = 'https://cdn.example/a.m3u8?token=abc123'
    const sealed = sealer.seal(tokenUrl)
    assert.match(sealed, /^sealed:v1:/)
    assert.ok(!sealed.includes('abc123'))
    assert.equal(sealer.unseal(sealed), tokenUrl)
  })

  it('does not seal a sealed value again', () => {
    const sealed = sealer.seal(URL_WITH_PASSWORD)
    assert.equal(sealer.seal(sealed), sealed)
  })

  it('digests requests with an HMAC: stable under one key, different under another, not the plain SHA-256', () => {
    const request = JSON.stringify(['load', URL_WITH_PASSWORD, 'file:///srv/cdn/movie.ts', null])
    const plain = createHash('sha256').update(request).digest('base64url')
    assert.equal(sealer.digest(request), createSealer(KEY).digest(request))
    assert.notEqual(sealer.digest(request), createSealer(OTHER_KEY).digest(request))
    assert.notEqual(sealer.digest(request), plain)
    assert.match(sealer.digest(request), /^[A-Za-z0-9_-]{43}$/)
  })
})

describe('sealing without a key', () => {
  const sealer = createSealer()

  it('stores every value as given, credentials included (the owner-only file protects them)', () => {
    assert.equal(sealer.keyed, false)
    assert.equal(sealer.seal(URL_WITH_PASSWORD), URL_WITH_PASSWORD)
    assert.equal(sealer.unseal(URL_WITH_PASSWORD), URL_WITH_PASSWORD)
  })

  it('refuses a sealed value with ERR_SECRET_KEY saying that no key is configured', () => {
    const sealed = createSealer(KEY).seal(URL_WITH_PASSWORD)
    const message = thrownMessage('ERR_SECRET_KEY', () => sealer.unseal(sealed))
    assert.equal(
      message,
      `A URL of this task is sealed (key id ${sealed.split(':')[2]}), but no secret key is configured: set APUBI_SECRET_KEY or APUBI_SECRET_KEY_FILE to the key it was sealed with`,
    )
  })

  it('digests requests with plain SHA-256, as before keys existed (active tasks keep deduplicating)', () => {
    const request = JSON.stringify(['purge', null, 'file:///srv/cdn/movie.ts', null])
    assert.equal(sealer.digest(request), createHash('sha256').update(request).digest('base64url'))
  })
})

describe('the secret key settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apubi-key-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  let files = 0
  const keyFile = (content: string) => {
    const path = join(dir, `key-${++files}`)
    writeFileSync(path, content, { mode: 0o600 })
    return path
  }
  const sealsLike = (key: Buffer | undefined) => {
    assert.ok(key)
    const sealed = createSealer(key).seal(URL_WITH_PASSWORD)
    return createSealer(KEY).unseal(sealed)
  }

  const spellings: Array<[what: string, text: string]> = [
    ['64 hex digits', KEY.toString('hex')],
    ['upper-case hex', KEY.toString('hex').toUpperCase()],
    ['base64', KEY.toString('base64')],
    ['base64 without padding', KEY.toString('base64').replace(/=$/, '')],
    ['base64url', KEY.toString('base64url')],
  ]
  for (const [what, text] of spellings) {
    it(`reads the key as ${what}, from APUBI_SECRET_KEY and from a file with a trailing newline`, () => {
      assert.equal(sealsLike(loadSecretKey({ secretKey: text })), URL_WITH_PASSWORD)
      assert.equal(sealsLike(loadSecretKey({ secretKeyFile: keyFile(`${text}\n`) })), URL_WITH_PASSWORD)
    })
  }

  it('is optional: neither setting, no key', () => {
    assert.equal(loadSecretKey({}), undefined)
  })

  const malformed: Array<[what: string, text: string]> = [
    ['too short', randomBytes(16).toString('hex')],
    ['too long', randomBytes(33).toString('base64')],
    ['a passphrase', 'correct horse battery staple s3cret phrase!'],
    ['empty', ''],
  ]
  for (const [what, text] of malformed) {
    it(`refuses a key that is ${what} with ERR_CONFIG_INVALID, without showing it`, () => {
      const fromFile = keyFile(text)
      const message = thrownMessage('ERR_CONFIG_INVALID', () => loadSecretKey({ secretKeyFile: fromFile }))
      assert.equal(
        message,
        `Invalid configuration: APUBI_SECRET_KEY_FILE ${fromFile} must be 32 bytes written as 64 hex digits or as base64 (make one with: openssl rand -base64 32) (found ${text.length} characters; the value is not shown)`,
      )
      if (text !== '') {
        const fromEnv = thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_SECRET_KEY: text }))
        assert.match(fromEnv, /APUBI_SECRET_KEY \(secretKey\): must be 32 bytes as 64 hex digits or as base64 \(openssl rand -base64 32\); the value is not shown/)
        assert.ok(!fromEnv.includes(text) && !message.includes(text), 'the value is not shown')
      }
    })
  }

  it('refuses both settings at once, and names an unreadable file without a stack', () => {
    assert.equal(
      thrownMessage('ERR_CONFIG_INVALID', () => loadSecretKey({ secretKey: KEY.toString('hex'), secretKeyFile: keyFile(KEY.toString('hex')) })),
      'Invalid configuration: set APUBI_SECRET_KEY or APUBI_SECRET_KEY_FILE, not both',
    )
    const missing = join(dir, 'missing-key')
    assert.equal(thrownMessage('ERR_CONFIG_INVALID', () => loadSecretKey({ secretKeyFile: missing })), `Invalid configuration: cannot read APUBI_SECRET_KEY_FILE ${missing} (ENOENT)`)
  })

  it('reaches the configuration from the environment and from the config file, trimmed', () => {
    const hex = KEY.toString('hex')
    assert.equal(loadConfig({ APUBI_SECRET_KEY: ` ${hex}\n` }).secretKey, hex)
    assert.equal(loadConfig({ APUBI_SECRET_KEY_FILE: '/run/secrets/apubi-key' }).secretKeyFile, '/run/secrets/apubi-key')
  })
})
