import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { PublishError } from '../errors.js'

/** `read-only` looks; `operator` also cancels and re-runs tasks. */
export type AdminRole = 'read-only' | 'operator'

export interface AdminToken {
  readonly token: string
  readonly role: AdminRole
}

/** Who may use the admin interface, decided per request. */
export interface AdminAccess {
  /** Whether any token is configured (then every data request needs one, from loopback too). */
  readonly tokens: boolean
  /**
   * The role of a request to the API or /metrics.
   * @throws PublishError ERR_UNAUTHENTICATED (no or a wrong bearer token, tokens configured),
   *   ERR_FORBIDDEN (no token configured and the client is not on loopback).
   */
  roleOf(req: IncomingMessage): AdminRole
  /**
   * Whether the static page, its script and the API description may be served: to anyone once tokens
   * are configured (they hold no data, and a browser navigation cannot send a token), else to loopback only.
   * @throws PublishError ERR_FORBIDDEN
   */
  checkReachable(req: IncomingMessage): void
}

const sha256 = (text: string) => createHash('sha256').update(text).digest()

/**
 * Bearer tokens with roles, compared in constant time (SHA-256 of both sides, every configured token
 * compared). Without any token the interface trusts loopback clients as operators, provided the Host
 * they asked for is a loopback name too: a web page whose name an attacker points at 127.0.0.1 (DNS
 * rebinding) then gets nothing.
 */
export function createAdminAccess(tokens: readonly AdminToken[]): AdminAccess {
  const known = tokens.map(({ token, role }) => ({ digest: sha256(token), role }))
  const checkLoopback = (req: IncomingMessage): void => {
    if (!isLoopbackAddress(req.socket.remoteAddress) || !isLoopbackHost(req.headers.host)) {
      throw new PublishError('ERR_FORBIDDEN', 'The admin interface answers only loopback clients while no admin token is configured (set APUBI_ADMIN_TOKEN)')
    }
  }
  return {
    tokens: known.length > 0,
    roleOf(req) {
      if (known.length === 0) {
        checkLoopback(req)
        return 'operator'
      }
      const given = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1]
      if (given === undefined) throw new PublishError('ERR_UNAUTHENTICATED', 'An admin token is required: send Authorization: Bearer <token>')
      const digest = sha256(given)
      let role: AdminRole | undefined
      for (const candidate of known) if (timingSafeEqual(candidate.digest, digest) && role === undefined) role = candidate.role
      if (role === undefined) throw new PublishError('ERR_UNAUTHENTICATED', 'The admin token is not valid')
      return role
    },
    checkReachable(req) {
      if (known.length === 0) checkLoopback(req)
    },
  }
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 addresses. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1'
}

/** A Host header naming this machine's loopback: localhost (and *.localhost), 127.x.x.x or [::1], any port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false
  const name = (host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '')).toLowerCase()
  return name === 'localhost' || name.endsWith('.localhost') || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}

/** The operator role is needed to change anything. @throws PublishError ERR_FORBIDDEN */
export function requireOperator(role: AdminRole): void {
  if (role !== 'operator') throw new PublishError('ERR_FORBIDDEN', 'This token is read-only: cancelling and re-running tasks need the operator role')
}
