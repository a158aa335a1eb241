// Who may use the admin interface: loopback by address and by Host, tokens and their roles, and the
// listing's query parameters. Pure functions, fed with the parts of a request they read.
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, it } from 'node:test'
import { createAdminAccess, isLoopbackAddress, isLoopbackHost, requireOperator } from '../../src/admin/access.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseListQuery } from '../../src/admin/list-query.js'
import { loadConfig } from '../../src/config/index.js'
import { isPublishError } from '../../src/errors.js'
import { secretValuesIn } from '../../src/observability/index.js'

/** What access reads of a request: the peer's address and two headers. */
const request = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers: { host: '127.0.0.1:8080', ...headers } }) as unknown as IncomingMessage

describe('loopback', () => {
  for (const [address, loopback] of [
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['192.0.2.2', false],
    ['::ffff:192.0.2.2', false],
    ['10.0.0.1', false],
    ['fd00::2', false],
    ['1270.0.0.1', false],
    ['', false],
  ] as const) {
    it(`address ${address || '(none)'} is ${loopback ? '' : 'not '}loopback`, () => assert.equal(isLoopbackAddress(address), loopback))
  }
  for (const [host, loopback] of [
    ['localhost', true],
    ['localhost:8080', true],
    ['LOCALHOST:8080', true],
    ['admin.localhost:8080', true],
    ['127.0.0.1:8080', true],
    ['[::1]:8080', true],
    ['[::1]', true],
    ['evil.example:8080', false],
    ['localhost.evil.example', false],
    ['127.0.0.1.evil.example', false],
    ['192.0.2.2:8080', false],
    ['[fd00::2]:8080', false],
    ['', false],
  ] as const) {
    it(`Host ${host || '(none)'} is ${loopback ? '' : 'not '}loopback`, () => assert.equal(isLoopbackHost(host), loopback))
  }
})

describe('admin access', () => {
  const refusedWith = (code: string) => (e: unknown) => isPublishError(e) && e.code === code

  it('without tokens: loopback clients naming a loopback Host are operators; anyone else is refused', () => {
    const access = createAdminAccess([])
    assert.equal(access.tokens, false)
    assert.equal(access.roleOf(request('127.0.0.1')), 'operator')
    assert.equal(access.roleOf(request('::1', { host: 'localhost:8080' })), 'operator')
    assert.throws(() => access.roleOf(request('192.0.2.2')), refusedWith('ERR_FORBIDDEN'))
    assert.throws(() => access.roleOf(request('127.0.0.1', { host: 'rebound.example:8080' })), refusedWith('ERR_FORBIDDEN'))
    assert.throws(() => access.checkReachable(request('192.0.2.2')), refusedWith('ERR_FORBIDDEN'))
    access.checkReachable(request('127.0.0.1'))
  })

  it('with tokens: each token has its role, from any address; none or a wrong one is refused', () => {
    const access = createAdminAccess([
      { token: 'operator-0123456789', role: 'operator' },
      { token: 'reader-0123456789', role: 'read-only' },
    ])
    assert.equal(access.tokens, true)
    assert.equal(access.roleOf(request('192.0.2.2', { authorization: 'Bearer operator-0123456789' })), 'operator')
    assert.equal(access.roleOf(request('192.0.2.2', { authorization: 'bearer  reader-0123456789' })), 'read-only')
    for (const authorization of [undefined, '', 'Bearer', 'Bearer reader-012345678', 'Bearer reader-0123456789x', 'Basic cmVhZGVy']) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization }
      assert.throws(() => access.roleOf(request('127.0.0.1', headers)), refusedWith('ERR_UNAUTHENTICATED'), String(authorization))
    }
    access.checkReachable(request('192.0.2.2', { host: 'apubi.example' }))
  })

  it('changes need the operator role', () => {
    requireOperator('operator')
    assert.throws(() => requireOperator('read-only'), refusedWith('ERR_FORBIDDEN'))
  })
})

describe('listing query', () => {
  const parse = (query: string) => parseListQuery(new URLSearchParams(query))

  it('has defaults, and reads every filter', () => {
    assert.deepEqual(parse(''), { limit: 50, offset: 0 })
    assert.deepEqual(parse('state=running,%20retry_wait&kind=purge&from=2025-01-01T00:00:00Z&to=1735776000000&q=%20vod/a%20&limit=10&offset=20'), {
      states: ['running', 'retry_wait'],
      kind: 'purge',
      createdFrom: Date.UTC(2025, 0, 1),
      createdBefore: 1735776000000,
      text: 'vod/a',
      limit: 10,
      offset: 20,
    })
    assert.deepEqual(parse('state=&kind=&q=%20%20'), { limit: 50, offset: 0 })
  })

  for (const [query, parameter] of <Array<[string, string]>>[
    ['state=running,done', 'state'],
    ['kind=LOAD', 'kind'],
    ['to=31/01/2025', 'to'],
    ['limit=1.5', 'limit'],
    ['limit=1000', 'limit'],
    ['offset=x', 'offset'],
    [`q=${'a'.repeat(257)}`, 'q'],
  ]) {
    it(`refuses ${query.slice(0, 30)}`, () => {
      assert.throws(() => parse(query), (e: unknown) => isPublishError(e, 'ERR_REQUEST_INVALID') && e.message.startsWith(`Query parameter ${parameter}:`))
    })
  }
})

describe('admin settings', () => {
  const withFile = (content: unknown) => {
    const file = join(mkdtempSync(join(tmpdir(), 'apubi-admin-config-')), 'config.json')
    writeFileSync(file, JSON.stringify(content))
    return file
  }

  it('takes the operator token from APUBI_ADMIN_TOKEN and more tokens with roles from the file; all are secrets for the log', () => {
    const config = loadConfig({
      APUBI_ADMIN_TOKEN: 'env-token-0123456789',
      APUBI_CONFIG: withFile({ adminTokens: [{ token: 'file-token-0123456789', role: 'read-only' }] }),
    })
    assert.equal(config.adminToken, 'env-token-0123456789')
    assert.deepEqual(config.adminTokens, [{ token: 'file-token-0123456789', role: 'read-only' }])
    assert.deepEqual(secretValuesIn(config).filter((s) => s.includes('token')).sort(), ['env-token-0123456789', 'file-token-0123456789'])
  })

  it('refuses a short token and an unknown role', () => {
    assert.throws(() => loadConfig({ APUBI_ADMIN_TOKEN: 'short' }), (e: unknown) => isPublishError(e, 'ERR_CONFIG_INVALID') && /APUBI_ADMIN_TOKEN \(adminToken\): .*at least 16 characters/.test(e.message) && !e.message.includes('short'))
    const file = withFile({ adminTokens: [{ token: 'file-token-0123456789', role: 'admin' }] })
    assert.throws(() => loadConfig({ APUBI_CONFIG: file }), (e: unknown) => isPublishError(e, 'ERR_CONFIG_INVALID') && /config file \(adminTokens\)/.test(e.message))
  })

  it('reads the log format, auto by default', () => {
    assert.equal(loadConfig({}).logFormat, 'auto')
    assert.equal(loadConfig({ APUBI_LOG_FORMAT: 'pretty' }).logFormat, 'pretty')
    assert.throws(() => loadConfig({ APUBI_LOG_FORMAT: 'xml' }), (e: unknown) => isPublishError(e, 'ERR_CONFIG_INVALID'))
  })
})
