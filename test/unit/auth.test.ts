import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { AuthenticationError, createAuthenticator, type UsernameToken } from '../../src/soap/index.js'

const USER = 'wfm'
const PASSWORD = 'correct horse battery staple'
const WINDOW_MS = 300_000
const NOW = Date.parse('2026-11-28T12:00:00Z')

function authenticator(allowedClients: string[] = [], now = () => NOW) {
  return createAuthenticator({ user: USER, password: PASSWORD, allowedClients, windowMs: WINDOW_MS, now })
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

function digestToken(options: { password?: string; user?: string; nonce?: string; created?: string } = {}): UsernameToken {
  const nonce = options.nonce ?? Buffer.from(`nonce-${Math.random()}`).toString('base64')
  const created = options.created ?? new Date(NOW).toISOString()
  const digest = createHash('sha1')
    .update(Buffer.from(nonce, 'base64'))
    .update(created)
    .update(options.password ?? PASSWORD)
    .digest('base64')
  return { username: options.user ?? USER, password: digest, passwordType: 'PasswordDigest', nonce, created }
}

/** The reason an operator reads in the log, or 'accepted'. */
function outcome(check: () => unknown): string {
  try {
    check()
    return 'accepted'
  } catch (e) {
    assert.ok(e instanceof AuthenticationError, `not an AuthenticationError: ${e}`)
    assert.equal(e.code, 'ERR_UNAUTHENTICATED')
    assert.equal(e.message, 'Authentication failed', 'the answer never says which part was wrong')
    return e.reason
  }
}

describe('HTTP Basic', () => {
  const auth = authenticator()
  const cases: Array<[string, string | undefined, string | boolean]> = [
    ['the right user and password', basic(USER, PASSWORD), true],
    ['no Authorization header: left to the UsernameToken', undefined, false],
    ['a Bearer token: left to the UsernameToken', 'Bearer abc', false],
    ['a wrong password', basic(USER, 'guess'), 'wrong user or password (Basic)'],
    ['a wrong user', basic('root', PASSWORD), 'wrong user or password (Basic)'],
    ['the password as a prefix', basic(USER, PASSWORD.slice(0, -1)), 'wrong user or password (Basic)'],
    ['no colon', `Basic ${Buffer.from(USER).toString('base64')}`, 'wrong user or password (Basic)'],
    ['the scheme in lower case', basic(USER, PASSWORD).replace('Basic', 'basic'), true],
  ]
  for (const [name, header, expected] of cases) {
    it(name, () => {
      let result: boolean | undefined
      const reason = outcome(() => (result = auth.checkBasic(header)))
      assert.equal(typeof expected === 'boolean' ? result : reason, expected)
    })
  }

  it('a password holding a colon', () => {
    const colon = createAuthenticator({ user: 'u', password: 'a:b', allowedClients: [], windowMs: WINDOW_MS, now: () => NOW })
    assert.equal(colon.checkBasic(basic('u', 'a:b')), true)
  })
})

describe('WS-Security UsernameToken', () => {
  it('PasswordDigest with a fresh Created and a new nonce', () => {
    assert.equal(outcome(() => authenticator().checkToken(digestToken(), false)), 'accepted')
  })

  it('refuses a replayed nonce, and accepts it again once the window has passed', () => {
    let now = NOW
    const auth = authenticator([], () => now)
    const token = digestToken()
    assert.equal(outcome(() => auth.checkToken(token, false)), 'accepted')
    assert.equal(outcome(() => auth.checkToken(token, false)), 'nonce replayed')
    // The same nonce with a new Created is a new digest, but the nonce is still remembered.
    const sameNonce = digestToken({ nonce: token.nonce!, created: new Date(NOW + 1000).toISOString() })
    assert.equal(outcome(() => auth.checkToken(sameNonce, false)), 'nonce replayed')
    now = NOW + 3 * WINDOW_MS
    const later = digestToken({ nonce: token.nonce!, created: new Date(now).toISOString() })
    assert.equal(outcome(() => auth.checkToken(later, false)), 'accepted')
  })

  const refused: Array<[string, UsernameToken, string]> = [
    ['a stale Created', digestToken({ created: new Date(NOW - WINDOW_MS - 1000).toISOString() }), 'Created outside the freshness window'],
    ['a Created too far ahead', digestToken({ created: new Date(NOW + WINDOW_MS + 1000).toISOString() }), 'Created outside the freshness window'],
    ['a Created that is no time', digestToken({ created: 'yesterday' }), 'Created outside the freshness window'],
    ['a wrong password', digestToken({ password: 'guess' }), 'wrong user or password digest'],
    ['a wrong user', digestToken({ user: 'root' }), 'wrong user or password digest'],
    ['no nonce', { ...digestToken(), nonce: undefined } as unknown as UsernameToken, 'PasswordDigest without Nonce or Created'],
    ['no Created', { ...digestToken(), created: undefined } as unknown as UsernameToken, 'PasswordDigest without Nonce or Created'],
  ]
  for (const [name, token, reason] of refused) {
    it(`refuses ${name}`, () => assert.equal(outcome(() => authenticator().checkToken(token, false)), reason))
  }

  it('a flood of fresh digests is refused once the per-user memory is full, and cannot push a recent nonce out', () => {
    let now = NOW
    const auth = createAuthenticator({ user: USER, password: PASSWORD, allowedClients: [], windowMs: WINDOW_MS, now: () => now, maxNoncesPerUser: 3 })
    const first = digestToken()
    assert.equal(outcome(() => auth.checkToken(first, false)), 'accepted')
    for (let i = 0; i < 2; i++) assert.equal(outcome(() => auth.checkToken(digestToken(), false)), 'accepted')
    for (let i = 0; i < 5; i++) {
      assert.equal(outcome(() => auth.checkToken(digestToken(), false)), 'more than 3 PasswordDigest nonces of this user within the window: new digests wait until older nonces expire')
    }
    assert.equal(outcome(() => auth.checkToken(first, false)), 'nonce replayed')
    now = NOW + 2 * WINDOW_MS + 1
    assert.equal(outcome(() => auth.checkToken(digestToken({ created: new Date(now).toISOString() }), false)), 'accepted')
  })

  it('a wrong digest does not use up its nonce', () => {
    const auth = authenticator()
    const nonce = Buffer.from('kept').toString('base64')
    assert.equal(outcome(() => auth.checkToken(digestToken({ nonce, password: 'guess' }), false)), 'wrong user or password digest')
    assert.equal(outcome(() => auth.checkToken(digestToken({ nonce }), false)), 'accepted')
  })

  it('PasswordText only over TLS', () => {
    const text: UsernameToken = { username: USER, password: PASSWORD, passwordType: 'PasswordText' }
    assert.equal(outcome(() => authenticator().checkToken(text, false)), 'PasswordText over a connection without TLS')
    assert.equal(outcome(() => authenticator().checkToken(text, true)), 'accepted')
    assert.equal(outcome(() => authenticator().checkToken({ ...text, password: 'guess' }, true)), 'wrong user or password (PasswordText)')
  })

  it('no token at all', () => {
    assert.equal(outcome(() => authenticator().checkToken(undefined, true)), 'no credentials')
  })
})

describe('without a user and password configured', () => {
  const open = createAuthenticator({ allowedClients: [], windowMs: WINDOW_MS, now: () => NOW })
  it('accepts anything', () => {
    assert.equal(open.required, false)
    assert.equal(open.checkBasic(undefined), true)
    assert.equal(outcome(() => open.checkToken(undefined, false)), 'accepted')
  })
})

describe('client allowlist', () => {
  const auth = authenticator(['10.0.0.0/8', '192.168.1.7', 'fd00::/8'])
  const cases: Array<[string | undefined, boolean]> = [
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['fd12::1', true],
    ['127.0.0.1', false],
    ['::1', false],
    [undefined, false],
  ]
  for (const [address, allowed] of cases) {
    it(`${address ?? 'an unknown address'} is ${allowed ? 'allowed' : 'refused'}`, () => {
      assert.equal(outcome(() => auth.checkClient({ remoteAddress: address })), allowed ? 'accepted' : `client address ${address ?? '(unknown)'} not allowed`)
    })
  }
  it('no allowlist: any address', () => assert.equal(outcome(() => authenticator().checkClient({ remoteAddress: '203.0.113.9' })), 'accepted'))
})

describe('a wrong password takes as long however much of it is right', () => {
  // Not a benchmark: the fastest of many interleaved batches of each kind, compared. An early-exit
  // comparison would make the nearly-right password measurably slower than the all-wrong one.
  const auth = authenticator()
  const kinds = {
    'wrong from the first character': basic(USER, 'X'.repeat(PASSWORD.length)),
    'wrong in the last character': basic(USER, `${PASSWORD.slice(0, -1)}X`),
    'wrong user, right password': basic('wfX', PASSWORD),
  }
  it('within 25 % of each other, fastest batch against fastest batch', () => {
    // A loaded machine can slow one kind's batches throughout one measurement; an early-exit
    // comparison is slower in every one. So the measurement is taken again, up to five times, and
    // one within bounds is enough.
    const measure = () => {
      const best = new Map<string, number>(Object.keys(kinds).map((k) => [k, Infinity]))
      for (let round = 0; round < 40; round++) {
        for (const [kind, header] of Object.entries(kinds)) {
          const started = process.hrtime.bigint()
          for (let i = 0; i < 300; i++) outcome(() => auth.checkBasic(header))
          best.set(kind, Math.min(best.get(kind)!, Number(process.hrtime.bigint() - started)))
        }
      }
      return best
    }
    let best = measure()
    const spread = (b: Map<string, number>) => Math.max(...b.values()) / Math.min(...b.values())
    for (let attempt = 1; attempt < 5 && spread(best) >= 1.25; attempt++) best = measure()
    const times = [...best.values()]
    const [fastest, slowest] = [Math.min(...times), Math.max(...times)]
    assert.ok(slowest / fastest < 1.25, `batches: ${JSON.stringify(Object.fromEntries(best))}`)
  })
})
