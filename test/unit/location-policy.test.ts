// The location policy: which sources and destinations a request may name (a table of URLs and rules
// with the decision, at request time), what a connection may reach (resolved once, connected to the
// address checked), and file paths checked again as they are opened. Real servers on 127.0.0.1
// show that the refused connections are never made and the allowed ones reach the checked address.
import assert from 'node:assert/strict'
import { lookup } from 'node:dns/promises'
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createFileBackend } from '../../src/backends/file/index.js'
import { createFtpBackend } from '../../src/backends/ftp/index.js'
import { createHostLimiter } from '../../src/backends/host-limiter.js'
import { createHttpBackend } from '../../src/backends/http/index.js'
import { createS3Backend } from '../../src/backends/s3/index.js'
import { createSftpBackend } from '../../src/backends/sftp/index.js'
import type { BackendContext, LocationGuard } from '../../src/backends/types.js'
import { loadConfig } from '../../src/config/load.js'
import { isPublishError, type Code } from '../../src/errors.js'
import { createLocationPolicy, parseLocation, type LocationPolicyOptions, type Resolver } from '../../src/transfer/locate.js'
import { startFtpSrv } from '../servers/ftp-server.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { SSHD_MISSING, startSshd } from '../servers/sftp-server.js'
import { makeTestCertificates, type TestCertificates } from '../servers/tls.js'

const never = new AbortController().signal

/**
 * Real DNS, except for the names given: `.test` names (RFC 2606) resolve nowhere else, so a name
 * that "resolves to" a metadata address is played without touching /etc/hosts.
 */
function resolverWith(names: Record<string, readonly string[]> = {}): Resolver {
  return async (host) => {
    const given = names[host]
    if (given) return given.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
    return lookup(host, { all: true, verbatim: true })
  }
}

/** The code of what `work` rejects with, or 'allowed'; and the message. */
async function outcome(work: () => Promise<unknown>): Promise<{ code: Code | 'allowed'; message: string }> {
  try {
    await work()
    return { code: 'allowed', message: '' }
  } catch (e) {
    assert.ok(isPublishError(e), `expected a PublishError, got ${String(e)}`)
    return { code: e.code, message: e.message }
  }
}

interface Case {
  readonly what: string
  /** `{root}` stands for the file root of the test tree. */
  readonly url: string
  readonly rules?: Omit<LocationPolicyOptions, 'resolve'>
  readonly names?: Record<string, readonly string[]>
  readonly expected: Code | 'allowed'
  /** What the refusal names: the rule, the address. */
  readonly why?: RegExp
}

const builtIn = /is in 169\.254\.0\.0\/16 \(IPv4 link-local, where clouds serve instance metadata\), denied unless an allow rule names it/
const loopbackDenied = { deniedHosts: ['127.0.0.0/8'] }
const vodOnly = { rules: { allow: [{ schemes: ['sftp' as const], hosts: ['origin.test'], paths: ['/srv/vod/'] }] } }

const cases: Case[] = [
  // Cloud metadata and link-local: denied by default, in every spelling.
  { what: 'the metadata address', url: 'http://169.254.169.254/latest/meta-data/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'decimal', url: 'http://2852039166/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'octal', url: 'http://0251.0376.0251.0376/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'hexadecimal', url: 'http://0xa9fea9fe/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'dotted hexadecimal', url: 'https://0xa9.0xfe.0xa9.0xfe/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'short form a.b.c', url: 'http://169.254.43518/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'IPv4-mapped IPv6, dotted', url: 'http://[::ffff:169.254.169.254]/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'IPv4-mapped IPv6, hexadecimal', url: 'http://[::ffff:a9fe:a9fe]/latest/', expected: 'ERR_POLICY_DENIED', why: builtIn },
  // URL parsing leaves the hosts of sftp, ftps, ftpes and s3 as written: the policy reads them itself.
  { what: 'decimal in an sftp URL', url: 'sftp://2852039166/etc/passwd', expected: 'ERR_POLICY_DENIED', why: /2852039166 is 169\.254\.169\.254; 169\.254\.169\.254 is in/ },
  { what: 'hexadecimal in an sftp URL', url: 'sftp://0xa9fea9fe/etc/passwd', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'octal in an ftps URL', url: 'ftps://0251.0376.0251.0376/x', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'short form in an ftpes URL', url: 'ftpes://169.16689662/x', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'a trailing dot on an address', url: 'sftp://169.254.169.254./x', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'IPv4-mapped IPv6 in an ftp URL', url: 'ftp://[::ffff:169.254.169.254]/x', expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'IPv6 link-local', url: 'sftp://[fe80::1]/x', expected: 'ERR_POLICY_DENIED', why: /fe80::1 is in fe80::\/10 \(IPv6 link-local\)/ },
  { what: 'AWS metadata over IPv6', url: 'http://[fd00:ec2::254]/latest/', expected: 'ERR_POLICY_DENIED', why: /fd00:ec2::254 is in fd00:ec2::254 \(AWS instance metadata over IPv6\)/ },
  { what: 'AWS metadata over IPv6, spelled out', url: 'ftpes://[fd00:0ec2:0:0:0:0:0:0254]:21/x', expected: 'ERR_POLICY_DENIED', why: /AWS instance metadata/ },
  { what: '0.0.0.0, which reaches the local machine', url: 'http://0.0.0.0:8080/', expected: 'ERR_POLICY_DENIED', why: /0\.0\.0\.0 is in 0\.0\.0\.0\/8/ },
  { what: '0, which is 0.0.0.0', url: 'http://0:8080/', expected: 'ERR_POLICY_DENIED', why: /0\.0\.0\.0\/8/ },
  { what: 'the unspecified IPv6 address', url: 'http://[::]:8080/', expected: 'ERR_POLICY_DENIED', why: /the unspecified address/ },
  { what: 'a name resolving to the metadata address', url: 'http://metadata.test/latest/', names: { 'metadata.test': ['169.254.169.254'] }, expected: 'ERR_POLICY_DENIED', why: /metadata\.test resolves to 169\.254\.169\.254; 169\.254\.169\.254 is in/ },
  { what: 'a name with one denied address among several', url: 'sftp://mixed.test/x', names: { 'mixed.test': ['10.0.0.1', 'fe80::1%eth0'] }, expected: 'ERR_POLICY_DENIED', why: /mixed\.test resolves to fe80::1%eth0/ },
  { what: 'a name resolving to a mapped metadata address', url: 'http://mapped.test/', names: { 'mapped.test': ['::ffff:169.254.169.254'] }, expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'an s3 bucket is a name, never an address', url: 's3://169.254.169.254/key', expected: 'allowed' },
  // Internal servers: allowed unless denied.
  { what: 'loopback', url: 'http://127.0.0.1:8080/a.ts', expected: 'allowed' },
  { what: 'localhost', url: 'ftp://localhost/a.ts', expected: 'allowed' },
  { what: 'IPv6 loopback', url: 'http://[::1]/a.ts', expected: 'allowed' },
  { what: 'a private range', url: 'sftp://10.1.2.3/srv/a.ts', expected: 'allowed' },
  { what: 'another private range', url: 'ftps://192.168.1.5/a.ts', expected: 'allowed' },
  { what: 'a name that does not resolve now: the connection decides', url: 'sftp://nowhere.test/a.ts', expected: 'allowed' },
  // Explicit allows lift the built-in deny only by address or range.
  { what: 'the metadata address allowed by address', url: 'http://169.254.169.254/latest/', rules: { allowedHosts: ['169.254.169.254'] }, expected: 'allowed' },
  { what: 'link-local allowed by range', url: 'http://169.254.1.2/', rules: { rules: { allow: [{ hosts: ['169.254.0.0/16'] }] } }, expected: 'allowed' },
  { what: 'a name allowed does not open its metadata address', url: 'http://meta.internal.test/', rules: { allowedHosts: ['*.internal.test'] }, names: { 'meta.internal.test': ['169.254.169.254'] }, expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'an allow of another range does not lift it', url: 'http://169.254.169.254/', rules: { allowedHosts: ['10.0.0.0/8'] }, expected: 'ERR_POLICY_DENIED', why: builtIn },
  { what: 'an explicit deny beats the lifting allow', url: 'http://169.254.169.254/', rules: { allowedHosts: ['169.254.169.254'], deniedHosts: ['169.254.0.0/16'] }, expected: 'ERR_POLICY_DENIED', why: /denied by APUBI_DENIED_HOSTS entry 169\.254\.0\.0\/16/ },
  // Deny lists: addresses, ranges, names, and the spellings of a denied address.
  { what: 'loopback denied', url: 'http://127.0.0.1/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED', why: /http:\/\/127\.0\.0\.1\/a\.ts is not allowed: denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.0\/8/ },
  { what: 'loopback denied, short form', url: 'http://127.1/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED' },
  { what: 'loopback denied, sftp short form', url: 'sftp://127.1/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED', why: /127\.1 is 127\.0\.0\.1; denied by/ },
  { what: 'loopback denied, sftp hexadecimal', url: 'sftp://0x7f000001/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED' },
  { what: 'loopback denied, sftp octal', url: 'sftp://017700000001/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED' },
  { what: 'loopback denied, mapped IPv6', url: 'https://[::ffff:7f00:1]/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED' },
  { what: 'localhost resolves to a denied address', url: 'http://localhost:8080/a.ts', rules: loopbackDenied, expected: 'ERR_POLICY_DENIED', why: /http:\/\/localhost:8080\/a\.ts is not allowed: localhost resolves to 127\.0\.0\.1; denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.0\/8/ },
  { what: 'a name denied by name', url: 'ftp://localhost/a.ts', rules: { deniedHosts: ['localhost'] }, expected: 'ERR_POLICY_DENIED', why: /denied by APUBI_DENIED_HOSTS entry localhost/ },
  { what: 'a name denied, written in capitals with a trailing dot', url: 'sftp://LocalHost./a.ts', rules: { deniedHosts: ['localhost'] }, expected: 'ERR_POLICY_DENIED' },
  { what: 'a suffix denies the names below it', url: 'http://cdn.corp.test/a.ts', rules: { deniedHosts: ['*.corp.test'] }, expected: 'ERR_POLICY_DENIED', why: /entry \*\.corp\.test/ },
  { what: 'a suffix does not deny the domain itself', url: 'http://corp.test/a.ts', rules: { deniedHosts: ['*.corp.test'] }, expected: 'allowed' },
  { what: 'an IPv6 range denied', url: 'http://[2001:db8::7]/a.ts', rules: { deniedHosts: ['2001:db8::/32'] }, expected: 'ERR_POLICY_DENIED' },
  { what: 'next to a denied IPv6 range', url: 'http://[2001:db9::7]/a.ts', rules: { deniedHosts: ['2001:db8::/32'] }, expected: 'allowed' },
  { what: 'an IPv4 range denied through a mapped address', url: 'sftp://[::ffff:10.1.1.1]/a.ts', rules: { deniedHosts: ['10.0.0.0/8'] }, expected: 'ERR_POLICY_DENIED' },
  { what: 'an explicit deny beats an explicit allow', url: 'http://10.0.0.5/a.ts', rules: { allowedHosts: ['10.0.0.0/8'], deniedHosts: ['10.0.0.5'] }, expected: 'ERR_POLICY_DENIED' },
  { what: 'the rest of the allowed range', url: 'http://10.0.0.6/a.ts', rules: { allowedHosts: ['10.0.0.0/8'], deniedHosts: ['10.0.0.5'] }, expected: 'allowed' },
  // Allow lists admit nothing else.
  { what: 'on the allow list by suffix', url: 'https://a.origin.test/a.ts', rules: { allowedHosts: ['*.origin.test'] }, expected: 'allowed' },
  { what: 'off the allow list', url: 'https://evil.test/a.ts', rules: { allowedHosts: ['*.origin.test'] }, expected: 'ERR_POLICY_DENIED', why: /not on the allow list \(APUBI_ALLOWED_HOSTS\)$/ },
  { what: 'an address is not on a list of names', url: 'http://127.0.0.1/a.ts', rules: { allowedHosts: ['origin.test'] }, expected: 'ERR_POLICY_DENIED', why: /not on the allow list/ },
  { what: 'a name resolving outside an allowed range', url: 'http://localhost/a.ts', rules: { allowedHosts: ['10.0.0.0/8'] }, expected: 'ERR_POLICY_DENIED', why: /localhost resolves to 127\.0\.0\.1; not on the allow list/ },
  { what: 'a name resolving inside the allowed ranges', url: 'http://localhost/a.ts', rules: { allowedHosts: ['127.0.0.0/8', '::1'] }, expected: 'allowed' },
  { what: 'a name not resolving now may still resolve into an allowed range', url: 'http://later.test/a.ts', rules: { allowedHosts: ['10.0.0.0/8'] }, expected: 'allowed' },
  // Ports and schemes.
  { what: 'a denied port', url: 'sftp://origin.test:22/a.ts', rules: { rules: { deny: [{ ports: [22] }] } }, expected: 'ERR_POLICY_DENIED', why: /denied by locationRules\.deny\[0\]/ },
  { what: 'another port', url: 'sftp://origin.test:2222/a.ts', rules: { rules: { deny: [{ ports: [22] }] } }, expected: 'allowed' },
  { what: 'the default port inside a denied range', url: 'http://origin.test/a.ts', rules: { rules: { deny: [{ schemes: ['http'], ports: ['1-1023'] }] } }, expected: 'ERR_POLICY_DENIED' },
  { what: 'a port outside the denied range', url: 'http://origin.test:8080/a.ts', rules: { rules: { deny: [{ schemes: ['http'], ports: ['1-1023'] }] } }, expected: 'allowed' },
  { what: 'a scheme the port rule does not name', url: 'ftp://origin.test/a.ts', rules: { rules: { deny: [{ schemes: ['http'], ports: ['1-1023'] }] } }, expected: 'allowed' },
  { what: 'a scheme denied', url: 'ftp://origin.test/a.ts', rules: { rules: { deny: [{ schemes: ['ftp'] }] } }, expected: 'ERR_POLICY_DENIED' },
  { what: 'ftps is not ftp', url: 'ftps://origin.test/a.ts', rules: { rules: { deny: [{ schemes: ['ftp'] }] } }, expected: 'allowed' },
  // Path prefixes, and the traversals that try to leave them.
  { what: 'inside the allowed path', url: 'sftp://origin.test/srv/vod/a.ts', rules: vodOnly, expected: 'allowed' },
  { what: 'the allowed folder itself', url: 'sftp://origin.test/srv/vod/', rules: vodOnly, expected: 'allowed' },
  { what: 'a sibling sharing the prefix', url: 'sftp://origin.test/srv/vodka/a.ts', rules: vodOnly, expected: 'ERR_POLICY_DENIED', why: /not on the allow list \(locationRules\.allow\)$/ },
  { what: 'traversal out of the allowed path', url: 'sftp://origin.test/srv/vod/../../etc/passwd', rules: vodOnly, expected: 'ERR_POLICY_DENIED' },
  { what: 'encoded traversal %2e%2e', url: 'sftp://origin.test/srv/vod/%2e%2e/%2e%2e/etc/passwd', rules: vodOnly, expected: 'ERR_POLICY_DENIED' },
  { what: 'traversal hidden in encoded slashes', url: 'sftp://origin.test/srv/vod/a%2F..%2F..%2F..%2Fetc/passwd', rules: vodOnly, expected: 'ERR_POLICY_DENIED' },
  { what: 'another host with the allowed path', url: 'sftp://other.test/srv/vod/a.ts', rules: vodOnly, expected: 'ERR_POLICY_DENIED' },
  { what: 'a scheme without allow rules stays open', url: 'http://other.test/srv/a.ts', rules: vodOnly, expected: 'allowed' },
  { what: 'climbing above the start is never allowed', url: 'sftp://origin.test/~/a%2F..%2F..%2F..%2Fetc/passwd', expected: 'ERR_POLICY_DENIED', why: /its path climbs above its start with '\.\.'/ },
  { what: 'an ftp path relative to the login directory', url: 'ftp://origin.test/pub/a.ts', rules: { rules: { allow: [{ schemes: ['ftp'], paths: ['/pub'] }] } }, expected: 'allowed' },
  { what: 'an ftp path from the server root reads the same', url: 'ftp://origin.test/%2Fpub/a.ts', rules: { rules: { allow: [{ schemes: ['ftp'], paths: ['/pub'] }] } }, expected: 'allowed' },
  { what: 'an ftp path outside the allowed one', url: 'ftp://origin.test/%2Fetc/passwd', rules: { rules: { allow: [{ schemes: ['ftp'], paths: ['/pub'] }] } }, expected: 'ERR_POLICY_DENIED' },
  { what: 'an s3 bucket denied by name', url: 's3://private-bucket/a.ts', rules: { rules: { deny: [{ schemes: ['s3'], hosts: ['private-bucket'] }] } }, expected: 'ERR_POLICY_DENIED' },
  { what: 'an s3 key under the allowed prefix', url: 's3://media/vod/a.ts', rules: { rules: { allow: [{ schemes: ['s3'], hosts: ['media'], paths: ['/vod/'] }] } }, expected: 'allowed' },
  { what: 'an s3 key outside the allowed prefix', url: 's3://media/other/a.ts', rules: { rules: { allow: [{ schemes: ['s3'], hosts: ['media'], paths: ['/vod/'] }] } }, expected: 'ERR_POLICY_DENIED' },
  { what: 'credentials never in the refusal', url: 'ftp://editor:S3cret-Pass@169.254.169.254/a.ts?token=T0k3n', expected: 'ERR_POLICY_DENIED', why: /^ftp:\/\/editor:\*\*\*@169\.254\.169\.254\/a\.ts is not allowed/ },
  // file:// inside its roots, after `..`, encodings and symlinks.
  { what: 'a file inside the root', url: 'file://{root}/in/a.ts', expected: 'allowed' },
  { what: 'a new folder inside the root', url: 'file://{root}/in/new/deeper.ts', expected: 'allowed' },
  { what: 'a symlink that stays inside', url: 'file://{root}/link-in/a.ts', expected: 'allowed' },
  { what: 'file traversal', url: 'file://{root}/../outside/secret.ts', expected: 'ERR_POLICY_DENIED', why: /is outside the allowed file roots/ },
  { what: 'file encoded traversal %2e%2e', url: 'file://{root}/in/%2e%2e/%2E%2E/outside/secret.ts', expected: 'ERR_POLICY_DENIED' },
  { what: 'a symlink that leads out', url: 'file://{root}/link-out/secret.ts', expected: 'ERR_POLICY_DENIED' },
  { what: 'a dangling symlink that leads out', url: 'file://{root}/dangling-out', expected: 'ERR_POLICY_DENIED' },
  { what: 'an encoded slash in a file path', url: 'file://{root}/in/..%2F..%2Foutside/secret.ts', expected: 'ERR_REQUEST_INVALID' },
  { what: 'the system outside every root', url: 'file:///etc/passwd', expected: 'ERR_POLICY_DENIED' },
]

describe('location policy at request time', () => {
  let base: string
  let root: string

  before(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), 'apubi-policy-')))
    root = join(base, 'root')
    mkdirSync(join(root, 'in'), { recursive: true })
    mkdirSync(join(base, 'outside'))
    writeFileSync(join(root, 'in', 'a.ts'), 'a')
    writeFileSync(join(base, 'outside', 'secret.ts'), 's')
    symlinkSync(join(base, 'outside'), join(root, 'link-out'))
    symlinkSync(join(root, 'in'), join(root, 'link-in'))
    symlinkSync(join(base, 'outside', 'not-yet'), join(root, 'dangling-out'))
  })
  after(() => rmSync(base, { recursive: true, force: true }))

  it(`judges a table of ${cases.length} locations`, () => assert.ok(cases.length >= 60))

  it('a resolver that never answers does not hold the request: the connection decides', async () => {
    const policy = createLocationPolicy([], { deniedHosts: ['10.0.0.0/8'], resolve: () => new Promise(() => {}) })
    await policy.checkResolved(parseLocation('http://silent.test/a.ts'))
  })

  for (const c of cases) {
    it(`${c.what}: ${c.url} → ${c.expected}`, async () => {
      const policy = createLocationPolicy([root], { ...c.rules, resolve: resolverWith(c.names) })
      const { code, message } = await outcome(async () => policy.checkResolved(parseLocation(c.url.replace('{root}', root))))
      assert.equal(code, c.expected, message)
      if (c.why) assert.match(message, c.why)
      assert.doesNotMatch(message, /S3cret-Pass|T0k3n/)
    })
  }
})

describe('location policy when connecting', () => {
  /** A name that answered 10.0.0.1 when the request came, and the metadata address since. */
  function rebinding(): Resolver {
    let calls = 0
    return async () => [{ address: calls++ === 0 ? '10.0.0.1' : '169.254.169.254', family: 4 }]
  }

  it('a name that changed its answer is refused when connecting (DNS rebinding)', async () => {
    const policy = createLocationPolicy([], { resolve: rebinding() })
    await policy.checkResolved(parseLocation('http://rebind.test/a.ts'))
    const { code, message } = await outcome(() => policy.guard.addressesFor({ scheme: 'http', host: 'rebind.test', port: 80 }))
    assert.equal(code, 'ERR_POLICY_DENIED')
    assert.match(message, /^http:\/\/rebind\.test:80 is not allowed: rebind\.test resolves to 169\.254\.169\.254; 169\.254\.169\.254 is in 169\.254\.0\.0\/16/)
  })

  it('hands back every checked address, an address literal normalised', async () => {
    const policy = createLocationPolicy([], { resolve: resolverWith({ 'two.test': ['10.0.0.1', 'fd12::1'] }) })
    assert.deepEqual(await policy.guard.addressesFor({ scheme: 'sftp', host: 'two.test', port: 22 }), [
      { address: '10.0.0.1', family: 4 },
      { address: 'fd12::1', family: 6 },
    ])
    assert.deepEqual(await policy.guard.addressesFor({ scheme: 'sftp', host: '0x7f.1', port: 22 }), [{ address: '127.0.0.1', family: 4 }])
    assert.deepEqual(await policy.guard.addressesFor({ scheme: 'ftp', host: '[::ffff:10.1.1.1]', port: 21 }), [{ address: '10.1.1.1', family: 4 }])
  })

  it('a name that does not resolve fails as the resolver does, not as a refusal', async () => {
    const policy = createLocationPolicy([])
    await assert.rejects(policy.guard.addressesFor({ scheme: 'ftp', host: 'nowhere.invalid', port: 21 }), (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND' && !isPublishError(e))
  })

  it('path rules are the URL check\'s: a connection serves every path of its host', async () => {
    const policy = createLocationPolicy([], {
      rules: { allow: [{ schemes: ['sftp'], hosts: ['10.0.0.0/8'], paths: ['/srv/vod/'] }], deny: [{ hosts: ['10.0.0.0/8'], paths: ['/srv/vod/private/'] }] },
      resolve: resolverWith({ 'origin.test': ['10.0.0.7'], 'elsewhere.test': ['192.168.0.7'] }),
    })
    assert.deepEqual(await policy.guard.addressesFor({ scheme: 'sftp', host: 'origin.test', port: 22 }), [{ address: '10.0.0.7', family: 4 }])
    assert.equal((await outcome(() => policy.guard.addressesFor({ scheme: 'sftp', host: 'elsewhere.test', port: 22 }))).code, 'ERR_POLICY_DENIED')
    assert.equal((await outcome(() => policy.checkResolved(parseLocation('sftp://origin.test/srv/vod/private/a.ts')))).code, 'ERR_POLICY_DENIED')
    await policy.checkResolved(parseLocation('sftp://origin.test/srv/vod/a.ts'))
  })

  it('for s3 the rules see the bucket as the host and the store\'s address as the address', async () => {
    const policy = createLocationPolicy([], { rules: { deny: [{ schemes: ['s3'], hosts: ['10.9.0.0/16'] }] }, resolve: resolverWith({ 'store.test': ['10.9.0.1'] }) })
    await policy.checkResolved(parseLocation('s3://media/a.ts'))
    const { code, message } = await outcome(() => policy.guard.addressesFor({ scheme: 's3', host: 'store.test', port: 9000, bucket: 'media' }))
    assert.equal(code, 'ERR_POLICY_DENIED')
    assert.match(message, /^s3:\/\/media \(store store\.test:9000\) is not allowed: store\.test resolves to 10\.9\.0\.1; denied by locationRules\.deny\[0\]/)
  })

  it('a redirect target is judged as a request\'s URL', () => {
    const policy = createLocationPolicy([], { deniedHosts: ['*.corp.test'] })
    assert.throws(() => policy.guard.checkUrl('http://user:S3cret-Pass@0xa9fea9fe/latest?token=T0k3n'), (e) => isPublishError(e, 'ERR_POLICY_DENIED') && !/S3cret|T0k3n/.test(e.message))
    assert.throws(() => policy.guard.checkUrl('https://db.corp.test/x'), (e) => isPublishError(e, 'ERR_POLICY_DENIED'))
    policy.guard.checkUrl('https://cdn.test/x')
  })
})

describe('connections go to the checked address', () => {
  let certificates: TestCertificates
  let dir: string
  let origin: HttpOrigin
  let secureOrigin: HttpOrigin
  const context = (guard: LocationGuard, overrides: Partial<BackendContext> = {}): BackendContext => ({
    hosts: createHostLimiter(4),
    timeoutMs: 5_000,
    tlsCa: certificates.ca,
    ssh: { knownHostsFile: '/nonexistent', hostKeyPolicy: 'strict' },
    s3: { region: 'us-east-1', buckets: {} },
    guard,
    ...overrides,
  })
  /** `localhost` and `alias.test` lead to 127.0.0.1; with `denyLoopback`, 127.0.0.0/8 is denied. */
  const policy = (denyLoopback = false) =>
    createLocationPolicy([], { ...(denyLoopback && { deniedHosts: ['127.0.0.0/8'] }), resolve: resolverWith({ 'alias.test': ['127.0.0.1'] }) })

  before(async () => {
    certificates = makeTestCertificates()
    dir = mkdtempSync(join(tmpdir(), 'apubi-policy-net-'))
    writeFileSync(join(dir, 'a.ts'), 'from the origin')
    origin = await startHttpOrigin(dir)
    secureOrigin = await startHttpOrigin(dir, { tls: certificates })
  })
  after(async () => {
    await origin.close()
    await secureOrigin.close()
    rmSync(dir, { recursive: true, force: true })
    certificates.remove()
  })

  it('http: a name resolving to a denied address is refused before any request', async () => {
    const backend = createHttpBackend({ scheme: 'http', host: 'localhost', port: origin.port }, context(policy(true).guard))
    const before = origin.log.length
    const { code, message } = await outcome(() => backend.stat('a.ts', never))
    await backend.close()
    assert.equal(code, 'ERR_POLICY_DENIED')
    assert.match(message, /localhost resolves to 127\.0\.0\.1; denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.0\/8/)
    assert.equal(origin.log.length, before, 'the origin saw no request')
  })

  it('http: a name only the policy\'s resolver knows is reached at the address it checked', async () => {
    const backend = createHttpBackend({ scheme: 'http', host: 'alias.test', port: origin.port }, context(policy().guard))
    const body = await backend.read('a.ts', never)
    const text = (await body.toArray()).join('')
    await backend.close()
    assert.equal(text, 'from the origin')
  })

  it('https: the certificate is checked against the URL\'s name, not the address connected to', async () => {
    // The certificate names 127.0.0.1 and localhost: by address it would pass, by the name alias.test it must not.
    const aliased = createHttpBackend({ scheme: 'https', host: 'alias.test', port: secureOrigin.port }, context(policy().guard))
    const { code, message } = await outcome(() => aliased.stat('a.ts', never))
    await aliased.close()
    assert.equal(code, 'ERR_AUTH', message)
    assert.match(message, /ERR_TLS_CERT_ALTNAME_INVALID|alias\.test/)
    const named = createHttpBackend({ scheme: 'https', host: 'localhost', port: secureOrigin.port }, context(policy().guard))
    assert.equal((await named.stat('a.ts', never)).size, 'from the origin'.length)
    await named.close()
  })

  it('http: a redirect to a denied host is refused, and that host is never asked', async () => {
    const denied = await startHttpOrigin(dir, { host: '127.0.0.2' })
    try {
      const guard = createLocationPolicy([], { deniedHosts: ['127.0.0.2'] }).guard
      const backend = createHttpBackend({ scheme: 'http', host: '127.0.0.1', port: origin.port }, context(guard))
      const { code, message } = await outcome(() => backend.read(`redirect-to/${encodeURIComponent(denied.url('a.ts'))}`, never))
      await backend.close()
      assert.equal(code, 'ERR_POLICY_DENIED')
      assert.match(message, /redirect from http:\/\/127\.0\.0\.1:\d+\/redirect-to\/\S+: http:\/\/127\.0\.0\.2:\d+\/a\.ts is not allowed: denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.2/)
      assert.deepEqual(denied.log, [])
    } finally {
      await denied.close()
    }
  })

  it('http: a redirect to a name that resolves to a denied address is refused when connecting', async () => {
    const guard = createLocationPolicy([], { resolve: resolverWith({ 'metadata.test': ['169.254.169.254'] }) }).guard
    const backend = createHttpBackend({ scheme: 'http', host: '127.0.0.1', port: origin.port }, context(guard))
    const { code, message } = await outcome(() => backend.read(`redirect-to/${encodeURIComponent('http://metadata.test/latest/meta-data')}`, never))
    await backend.close()
    assert.equal(code, 'ERR_POLICY_DENIED')
    assert.match(message, /metadata\.test resolves to 169\.254\.169\.254/)
  })

  it('ftp: refused before connecting; allowed, it logs in at the checked address', async () => {
    const ftpRoot = mkdtempSync(join(tmpdir(), 'apubi-policy-ftp-'))
    const server = await startFtpSrv(ftpRoot)
    try {
      const endpoint = { scheme: 'ftp' as const, host: 'alias.test', port: server.port, user: server.user, password: server.password }
      const denied = createFtpBackend(endpoint, context(policy(true).guard))
      const refused = await outcome(() => denied.stat('.', never))
      await denied.close()
      assert.equal(refused.code, 'ERR_POLICY_DENIED')
      assert.match(refused.message, /^ftp:\/\/alias\.test:\d+ is not allowed: alias\.test resolves to 127\.0\.0\.1; denied by/)
      const allowed = createFtpBackend(endpoint, context(policy().guard))
      await allowed.write('up.ts', Readable.from([Buffer.from('through the alias')]), never)
      await allowed.close()
      assert.equal(readFileSync(join(ftpRoot, 'up.ts'), 'utf8'), 'through the alias')
    } finally {
      await server.close()
      rmSync(ftpRoot, { recursive: true, force: true })
    }
  })

  it('ftpes: the certificate is checked against the URL\'s name on the checked address', async () => {
    const ftpRoot = mkdtempSync(join(tmpdir(), 'apubi-policy-ftps-'))
    writeFileSync(join(ftpRoot, 'a.ts'), 'secure')
    const server = await startFtpSrv(ftpRoot, { tls: certificates })
    try {
      const endpoint = (host: string) => ({ scheme: 'ftpes' as const, host, port: server.port, user: server.user, password: server.password })
      const aliased = createFtpBackend(endpoint('alias.test'), context(policy().guard))
      const { code, message } = await outcome(() => aliased.stat('a.ts', never))
      await aliased.close()
      assert.equal(code, 'ERR_AUTH', message)
      assert.match(message, /TLS certificate not trusted/)
      const named = createFtpBackend(endpoint('localhost'), context(policy().guard))
      const text = (await (await named.read('a.ts', never)).toArray()).join('')
      await named.close()
      assert.equal(text, 'secure')
    } finally {
      await server.close()
      rmSync(ftpRoot, { recursive: true, force: true })
    }
  })

  it('sftp: refused before connecting; the host key is looked up by the URL\'s name', { timeout: 30_000 }, async (t) => {
    const sftpDir = mkdtempSync(join(tmpdir(), 'apubi-policy-sftp-'))
    const { chmodSync } = await import('node:fs')
    chmodSync(sftpDir, 0o711)
    mkdirSync(join(sftpDir, 'root'))
    const server = await startSshd(join(sftpDir, 'root'))
    if (!server) {
      rmSync(sftpDir, { recursive: true, force: true })
      console.warn(`\n*** SKIPPED sftp policy test: ${SSHD_MISSING} ***\n`)
      return t.skip(SSHD_MISSING)
    }
    try {
      const knownHosts = join(sftpDir, 'known_hosts')
      // Trusted by address only: a connection to the address under another name must not use it.
      writeFileSync(knownHosts, `${server.knownHostsLine}\n`)
      const ssh = { knownHostsFile: knownHosts, hostKeyPolicy: 'strict' as const }
      const endpoint = { scheme: 'sftp' as const, host: 'alias.test', port: server.port, user: server.user, privateKey: server.privateKey }
      const denied = createSftpBackend(endpoint, context(policy(true).guard, { ssh }))
      assert.equal((await outcome(() => denied.stat('/', never))).code, 'ERR_POLICY_DENIED')
      await denied.close()
      const unknownName = createSftpBackend(endpoint, context(policy().guard, { ssh }))
      const { code, message } = await outcome(() => unknownName.stat('/', never))
      await unknownName.close()
      assert.equal(code, 'ERR_AUTH', message)
      assert.match(message, /of \[alias\.test\]:\d+ is not in/)
      writeFileSync(knownHosts, `${server.knownHostsLine}\n${server.knownHostsLine.replace(/^\S+/, `[alias.test]:${server.port}`)}\n`)
      const known = createSftpBackend(endpoint, context(policy().guard, { ssh }))
      assert.equal((await known.stat(server.root.slice(1), never)).type, 'directory')
      await known.close()
    } finally {
      await server.close()
      rmSync(sftpDir, { recursive: true, force: true })
    }
  })

  it('s3: a store at a denied address is refused before any request, named or literal', async () => {
    for (const endpoint of ['http://127.0.0.1:9', 'http://localhost:9']) {
      const s3 = { region: 'us-east-1', buckets: {}, endpoint, forcePathStyle: true, accessKeyId: 'AKIDTEST', secretAccessKey: 'S3cret-Pass' }
      const backend = createS3Backend({ scheme: 's3', host: 'media', port: 0 }, context(policy(true).guard, { s3 }))
      const { code, message } = await outcome(() => backend.stat('a.ts', never))
      await backend.close()
      // Nothing listens on port 9: a connection attempt would have ended ERR_UNREACHABLE.
      assert.equal(code, 'ERR_POLICY_DENIED', `${endpoint}: ${message}`)
      assert.match(message, /s3:\/\/media \(store (127\.0\.0\.1|localhost):9\) is not allowed: .*denied by APUBI_DENIED_HOSTS entry 127\.0\.0\.0\/8/)
      assert.doesNotMatch(message, /S3cret-Pass/)
    }
  })
})

describe('file paths are checked again as they are opened', () => {
  let base: string
  let root: string
  let outside: string
  let guard: LocationGuard

  before(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), 'apubi-policy-file-')))
    root = join(base, 'root')
    outside = join(base, 'outside')
    mkdirSync(join(root, 'dir'), { recursive: true })
    mkdirSync(outside)
    writeFileSync(join(root, 'dir', 'a.ts'), 'inside')
    writeFileSync(join(outside, 'a.ts'), 'outside, never to be read or overwritten')
    guard = createLocationPolicy([root]).guard
  })
  after(() => rmSync(base, { recursive: true, force: true }))

  /** The folder the task was checked against becomes a symlink out of the root, mid-task. */
  const swapOut = (): void => {
    renameSync(join(root, 'dir'), join(root, 'dir-was'))
    symlinkSync(outside, join(root, 'dir'))
  }

  it('a folder swapped for a symlink out after the task was checked: write and read refused, nothing outside touched', async () => {
    const backend = createFileBackend({ scheme: 'file', host: '', port: 0 }, { hosts: createHostLimiter(2), timeoutMs: 1_000, ssh: { knownHostsFile: '', hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} }, guard })
    guard.checkFile(join(root, 'dir', 'a.ts'))
    swapOut()
    try {
      assert.equal((await outcome(() => backend.write(join(root, 'dir', 'a.ts'), Readable.from([Buffer.from('overwritten')]), never))).code, 'ERR_POLICY_DENIED')
      assert.equal((await outcome(() => backend.read(join(root, 'dir', 'a.ts'), never))).code, 'ERR_POLICY_DENIED')
      assert.equal((await outcome(() => backend.rename(join(root, 'dir', 'a.ts'), join(root, 'b.ts'), never))).code, 'ERR_POLICY_DENIED')
      assert.equal((await outcome(() => backend.remove(join(root, 'dir', 'a.ts'), never))).code, 'ERR_POLICY_DENIED')
      assert.equal(readFileSync(join(outside, 'a.ts'), 'utf8'), 'outside, never to be read or overwritten')
    } finally {
      rmSync(join(root, 'dir'))
      renameSync(join(root, 'dir-was'), join(root, 'dir'))
    }
  })

  it('a swap between the check and the open is caught on the file actually opened', async () => {
    // The checks of the path pass, as they would have just before the swap: the file opened is judged by its real path.
    const racing: LocationGuard = {
      ...guard,
      checkFile: (path) => {
        if (path !== join(root, 'dir', 'a.ts')) guard.checkFile(path)
      },
    }
    const backend = createFileBackend({ scheme: 'file', host: '', port: 0 }, { hosts: createHostLimiter(2), timeoutMs: 1_000, ssh: { knownHostsFile: '', hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} }, guard: racing })
    swapOut()
    try {
      const { code, message } = await outcome(() => backend.write(join(root, 'dir', 'a.ts'), Readable.from([Buffer.from('overwritten')]), never))
      assert.equal(code, 'ERR_POLICY_DENIED')
      assert.match(message, new RegExp(`file://${outside}/a\\.ts is outside the allowed file roots`))
      assert.equal(readFileSync(join(outside, 'a.ts'), 'utf8'), 'outside, never to be read or overwritten', 'not truncated either')
    } finally {
      rmSync(join(root, 'dir'))
      renameSync(join(root, 'dir-was'), join(root, 'dir'))
    }
  })

  it('inside the root, reads and writes work as before', async () => {
    const backend = createFileBackend({ scheme: 'file', host: '', port: 0 }, { hosts: createHostLimiter(2), timeoutMs: 1_000, ssh: { knownHostsFile: '', hostKeyPolicy: 'strict' }, s3: { region: 'us-east-1', buckets: {} }, guard })
    await backend.write(join(root, 'dir', 'b.ts'), Readable.from([Buffer.from('0123456789')]), never)
    await backend.write(join(root, 'dir', 'b.ts'), Readable.from([Buffer.from('abc')]), never)
    await backend.write(join(root, 'dir', 'b.ts'), Readable.from([Buffer.from('def')]), never, { append: true })
    assert.equal(readFileSync(join(root, 'dir', 'b.ts'), 'utf8'), 'abcdef', 'replaced whole, then appended')
    assert.equal((await (await backend.read(join(root, 'dir', 'b.ts'), never, 2)).toArray()).join(''), 'cdef')
  })
})

describe('location policy settings', () => {
  const file = (content: object): string => {
    const dir = mkdtempSync(join(tmpdir(), 'apubi-policy-config-'))
    writeFileSync(join(dir, 'config.json'), JSON.stringify(content))
    return join(dir, 'config.json')
  }

  it('reads the host lists from the environment and the rules from the file', () => {
    const config = loadConfig({
      APUBI_ALLOWED_HOSTS: ' 10.0.0.0/8, *.origin.test,[fd12::]/16 ',
      APUBI_DENIED_HOSTS: '10.0.0.5',
      APUBI_CONFIG: file({ locationRules: { deny: [{ schemes: ['http'], ports: [22, '8000-8099'], paths: ['/admin/'] }] } }),
    })
    assert.deepEqual(config.allowedHosts, ['10.0.0.0/8', '*.origin.test', '[fd12::]/16'])
    assert.deepEqual(config.deniedHosts, ['10.0.0.5'])
    assert.deepEqual(config.locationRules, { allow: [], deny: [{ schemes: ['http'], ports: [22, '8000-8099'], paths: ['/admin/'] }] })
  })

  it('defaults to no rule at all: the built-in deny alone', () => {
    const config = loadConfig({})
    assert.deepEqual([config.allowedHosts, config.deniedHosts, config.locationRules], [[], [], { allow: [], deny: [] }])
  })

  it('refuses hosts, ports, paths and schemes it cannot read, all at once', () => {
    assert.throws(
      () =>
        loadConfig({
          APUBI_DENIED_HOSTS: '10.0.0.0/33,exa mple.test',
          APUBI_CONFIG: file({ locationRules: { allow: [{ schemes: ['file'], hosts: ['999.1.1.1'], ports: ['90-80'], paths: ['vod/'] }], other: [] } }),
        }),
      (e) => {
        assert.ok(isPublishError(e, 'ERR_CONFIG_INVALID'))
        for (const part of [/APUBI_DENIED_HOSTS \(deniedHosts\): 0 must be a host name/, /1 must be a host name/, /locationRules\): allow\.0\.schemes\.0/, /allow\.0\.hosts\.0 must be a host name/, /allow\.0\.ports\.0/, /allow\.0\.paths\.0/, /Unrecognized key: "other"/]) {
          assert.match(e.message, part)
        }
        return true
      },
    )
  })
})
