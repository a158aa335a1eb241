import { createHash, timingSafeEqual } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import { PublishError } from '../errors.js'
import type { UsernameToken } from './parse.js'

export interface AuthOptions {
  /** Both set: every request must prove them, by HTTP Basic or a WS-Security UsernameToken. */
  readonly user?: string | undefined
  readonly password?: string | undefined
  /** Client addresses and CIDR ranges that may call at all; empty: any. */
  readonly allowedClients: readonly string[]
  /** How old (or how far ahead) a PasswordDigest's Created may be; its nonce is remembered this long. */
  readonly windowMs: number
  /** Nonces remembered per user within a window; past it new digests are refused (default 100,000). */
  readonly maxNoncesPerUser?: number
  readonly now: () => number
}

/**
 * Refused, with nothing that tells a guesser which part was wrong; `reason` is for the log only.
 */
export class AuthenticationError extends PublishError {
  constructor(readonly reason: string) {
    super('ERR_UNAUTHENTICATED', 'Authentication failed')
  }
}

/**
 * Nonces remembered per user: only requests whose digest is right get this far, so only a client
 * holding the credentials can fill it, and then its own new digests wait for the window to pass.
 */
const MAX_NONCES_PER_USER = 100_000

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()
/** Equal-length digests compared in constant time: neither the length nor a common prefix shows. */
const same = (a: string, b: string): boolean => timingSafeEqual(sha256(a), sha256(b))

/**
 * Who may call the SOAP edge: an optional client allowlist, then, when a user and password are
 * configured, HTTP Basic or a WS-Security UsernameToken (PasswordText only over TLS; PasswordDigest
 * with a fresh Created and a nonce never seen before).
 */
export function createAuthenticator(options: AuthOptions) {
  const allowed = clientList(options.allowedClients)
  const { user, password, windowMs, now } = options
  const maxNonces = options.maxNoncesPerUser ?? MAX_NONCES_PER_USER
  /** Per user, each nonce with the time it may be used again; in insertion order, so expiry order. */
  const nonces = new Map<string, Map<string, number>>()
  const required = user !== undefined && password !== undefined

  const credentialsMatch = (givenUser: string, givenPassword: string): boolean => {
    // Both compared before deciding: a wrong user costs what a wrong password costs.
    const userMatches = same(givenUser, user!)
    const passwordMatches = same(givenPassword, password!)
    return userMatches && passwordMatches
  }

  /**
   * Remembers a nonce of `user` for two windows (a Created up to a window ahead stays fresh for two).
   * A full memory refuses the new digest rather than forget a recent nonce, which would let a flood
   * of fresh digests make room for a replay.
   * @throws AuthenticationError for a nonce seen within the window, or when the memory is full.
   */
  function rememberNonce(user: string, nonce: string, at: number): void {
    let seen = nonces.get(user)
    if (!seen) nonces.set(user, (seen = new Map()))
    for (const [known, expires] of seen) {
      if (expires > at) break
      seen.delete(known)
    }
    const expires = seen.get(nonce)
    if (expires !== undefined && expires > at) throw new AuthenticationError('nonce replayed')
    if (seen.size >= maxNonces) throw new AuthenticationError(`more than ${maxNonces} PasswordDigest nonces of this user within the window: new digests wait until older nonces expire`)
    seen.set(nonce, at + 2 * windowMs)
  }

  function checkDigest(token: UsernameToken): void {
    if (!token.nonce || !token.created) throw new AuthenticationError('PasswordDigest without Nonce or Created')
    const created = Date.parse(token.created)
    const at = now()
    if (!Number.isFinite(created) || Math.abs(at - created) > windowMs) throw new AuthenticationError('Created outside the freshness window')
    const nonce = Buffer.from(token.nonce, 'base64')
    const expected = createHash('sha1').update(nonce).update(token.created, 'utf8').update(password!, 'utf8').digest('base64')
    // Both compared before deciding: a wrong user costs what a wrong digest costs.
    const userMatches = same(token.username, user!)
    const digestMatches = same(token.password, expected)
    if (!userMatches || !digestMatches) throw new AuthenticationError('wrong user or password digest')
    rememberNonce(token.username, token.nonce, at)
  }

  return {
    /** Whether requests must carry credentials. */
    required,

    /**
     * @throws AuthenticationError when an allowlist is set and the client's address is not on it.
     * The address is asked for only then: reading it costs every poll a few hundred instructions.
     */
    checkClient(client: { readonly remoteAddress?: string | undefined }): void {
      if (!allowed) return
      const address = client.remoteAddress
      const family = address ? isIP(address) : 0
      if (family === 0 || !allowed.check(address!, family === 4 ? 'ipv4' : 'ipv6')) {
        throw new AuthenticationError(`client address ${address ?? '(unknown)'} not allowed`)
      }
    },

    /**
     * Checks an `Authorization` header.
     * @returns false when it carries no Basic credentials (the body may carry a UsernameToken)
     * @throws AuthenticationError when it carries wrong ones
     */
    checkBasic(header: string | undefined): boolean {
      if (!required) return true
      const match = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '')
      if (!match) return false
      const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const ok = colon >= 0 && credentialsMatch(decoded.slice(0, colon), decoded.slice(colon + 1))
      if (!ok) throw new AuthenticationError('wrong user or password (Basic)')
      return true
    },

    /** @throws AuthenticationError unless `token` proves the configured user and password. */
    checkToken(token: UsernameToken | undefined, overTls: boolean): void {
      if (!required) return
      if (!token) throw new AuthenticationError('no credentials')
      if (token.passwordType === 'PasswordDigest') return checkDigest(token)
      if (!overTls) throw new AuthenticationError('PasswordText over a connection without TLS')
      if (!credentialsMatch(token.username, token.password)) throw new AuthenticationError('wrong user or password (PasswordText)')
    },
  }
}

export type Authenticator = ReturnType<typeof createAuthenticator>

/** The allowlist as a matcher; entries were validated with the configuration. */
function clientList(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined
  const list = new BlockList()
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/')
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(bits), type)
  }
  return list
}
