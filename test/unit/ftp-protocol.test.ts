import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FTPError } from 'basic-ftp'
import { hashMethod, parseHashReply, selectedHash, type HashMethod } from '../../src/backends/ftp/hash.js'
import { parseMlst } from '../../src/backends/ftp/protocol.js'
import { codeFor } from '../../src/backends/ftp/index.js'

const reply = (code: number, message = `${code} reply`) => new FTPError({ code, message } as never)
const errno = (code: string) => Object.assign(new Error(code), { code })

describe('parseMlst', () => {
  const cases: Array<[string, string, { type: 'file' | 'directory'; size: number }]> = [
    ['a file', '250-Listing a.ts\n type=file;size=1234;modify=20240101000000; /a.ts\n250 End', { type: 'file', size: 1234 }],
    ['a directory', '250-Listing d\n Type=dir;Modify=20240101000000; /d\n250 End', { type: 'directory', size: 0 }],
    ['the current directory', '250-Listing .\n type=cdir;perm=el; /\n250 End', { type: 'directory', size: 0 }],
    ['a file without size fact', '250-x\n type=file; /x\n250 End', { type: 'file', size: 0 }],
    ['a name with spaces', '250-x\n type=file;size=7; /a b c.ts\n250 End', { type: 'file', size: 7 }],
  ]
  for (const [name, message, expected] of cases) it(name, () => assert.deepEqual(parseMlst(message), expected))
  it('refuses a reply without a facts line', () => assert.throws(() => parseMlst('250 ok'), /unreadable MLST reply/))
})

describe('codeFor maps FTP replies and socket errors to our codes', () => {
  const cases: Array<[string, unknown, Parameters<typeof codeFor>[1], boolean, string]> = [
    ['530 login refused', reply(530), 'stat', true, 'ERR_AUTH'],
    ['550 on a lookup', reply(550), 'stat', false, 'ERR_NOT_FOUND'],
    ['550 on a read', reply(550), 'read', false, 'ERR_NOT_FOUND'],
    ['550 on a write', reply(550), 'write', false, 'ERR_PERMISSION'],
    ['550 on mkdir', reply(550), 'mkdir', false, 'ERR_PERMISSION'],
    ['552 storage full', reply(552), 'write', false, 'ERR_TRANSFER'],
    ['553 name refused', reply(553), 'write', false, 'ERR_PERMISSION'],
    ['421 too many connections', reply(421), 'write', true, 'ERR_TRANSFER'],
    ['426 transfer aborted', reply(426), 'read', false, 'ERR_TRANSFER'],
    ['another 4xx', reply(450), 'read', false, 'ERR_TRANSFER'],
    ['another 5xx', reply(502), 'stat', false, 'ERR_INTERNAL'],
    ['refused while connecting', errno('ECONNREFUSED'), 'stat', true, 'ERR_UNREACHABLE'],
    ['unknown host', errno('ENOTFOUND'), 'stat', true, 'ERR_UNREACHABLE'],
    ['a timeout while connecting', new Error('Timeout (control socket)'), 'stat', true, 'ERR_UNREACHABLE'],
    ['reset mid-transfer', errno('ECONNRESET'), 'write', false, 'ERR_TRANSFER'],
    ['a broken pipe', errno('EPIPE'), 'write', false, 'ERR_TRANSFER'],
    ['an unknown failure after login', new Error('odd'), 'read', false, 'ERR_TRANSFER'],
    ['550 on a digest', reply(550), 'hash', false, 'ERR_NOT_FOUND'],
    ['a certificate from an unknown CA', errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'stat', true, 'ERR_AUTH'],
    ['a self-signed certificate', errno('DEPTH_ZERO_SELF_SIGNED_CERT'), 'stat', true, 'ERR_AUTH'],
    ['a certificate for another name', errno('ERR_TLS_CERT_ALTNAME_INVALID'), 'stat', true, 'ERR_AUTH'],
    ['an expired certificate', errno('CERT_HAS_EXPIRED'), 'write', true, 'ERR_AUTH'],
    ['a TLS handshake that fails otherwise', errno('ERR_SSL_WRONG_VERSION_NUMBER'), 'stat', true, 'ERR_UNREACHABLE'],
  ]
  for (const [name, error, op, connecting, expected] of cases) {
    it(name, () => assert.equal(codeFor(error, op, connecting), expected))
  }
})

describe('hashMethod picks the command from FEAT, the standard HASH first', () => {
  const feat = (...lines: Array<[string, string]>) => new Map(lines)
  const cases: Array<[string, Map<string, string>, 'md5' | 'sha256', HashMethod | undefined]> = [
    ['HASH listing SHA-256', feat(['HASH', 'SHA-1*;SHA-256;SHA-512;MD5']), 'sha256', { command: 'HASH', name: 'SHA-256' }],
    ['HASH listing MD5', feat(['HASH', 'SHA-1*;SHA-256;SHA-512;MD5']), 'md5', { command: 'HASH', name: 'MD5' }],
    ['HASH in lower case', feat(['HASH', 'sha-1;sha-256*']), 'sha256', { command: 'HASH', name: 'SHA-256' }],
    ['HASH without the algorithm, XSHA256 beside it', feat(['HASH', 'SHA-1*;CRC32'], ['XSHA256', '']), 'sha256', { command: 'XSHA256' }],
    ['HASH preferred over XMD5', feat(['XMD5', ''], ['HASH', 'MD5*']), 'md5', { command: 'HASH', name: 'MD5' }],
    ['XMD5 preferred over MD5', feat(['MD5', ''], ['XMD5', '']), 'md5', { command: 'XMD5' }],
    ['MD5 alone', feat(['MD5', '']), 'md5', { command: 'MD5' }],
    ['MD5 alone gives no SHA-256', feat(['MD5', '']), 'sha256', undefined],
    ['no digest command (vsftpd)', feat(['EPSV', ''], ['REST', 'STREAM'], ['SIZE', '']), 'sha256', undefined],
  ]
  for (const [name, features, algorithm, expected] of cases) {
    it(`${name} → ${expected ? expected.command : 'none'} for ${algorithm}`, () => assert.deepEqual(hashMethod(features, algorithm), expected))
  }
  it('selectedHash reads the starred algorithm', () => {
    assert.equal(selectedHash(new Map([['HASH', 'SHA-1;SHA-256*;MD5']])), 'SHA-256')
    assert.equal(selectedHash(new Map([['HASH', 'SHA-1;MD5']])), undefined)
    assert.equal(selectedHash(new Map()), undefined)
  })
})

describe('parseHashReply reads the digest of each dialect in lower-case hex', () => {
  const sha256 = '9e107d9d372bb6826bd81d3542a419d6f7b8ee4e4c2d53d4c5c3c3e57e4b5c6d'
  const md5 = '9e107d9d372bb6826bd81d3542a419d6'
  const hash = (name: string): HashMethod => ({ command: 'HASH', name })
  const cases: Array<[string, HashMethod, string, 'md5' | 'sha256', string | undefined]> = [
    ['HASH SHA-256', hash('SHA-256'), `213 SHA-256 0-43 ${sha256} fox.txt`, 'sha256', sha256],
    ['HASH with a path with spaces', hash('SHA-256'), `213 SHA-256 0-43 ${sha256} a b c.txt`, 'sha256', sha256],
    ['HASH in upper-case hex (IIS)', hash('MD5'), `213 MD5 0-43 ${md5.toUpperCase()} fox.txt`, 'md5', md5],
    ['HASH answering another algorithm than chosen', hash('SHA-256'), `213 SHA-1 0-43 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 fox.txt`, 'sha256', undefined],
    ['XSHA256 (ProFTPD)', { command: 'XSHA256' }, `250 ${sha256}`, 'sha256', sha256],
    ['XMD5 (ProFTPD)', { command: 'XMD5' }, `250 ${md5}`, 'md5', md5],
    ['XMD5 with 213 and a trailing path', { command: 'XMD5' }, `213 ${md5.toUpperCase()} fox.txt`, 'md5', md5],
    ['MD5 (draft-twine)', { command: 'MD5' }, `251 a b.txt ${md5.toUpperCase()}`, 'md5', md5],
    ['a multi-line reply, digest on the last line', { command: 'XMD5' }, `250-Computing\n250 ${md5}`, 'md5', md5],
    ['a digest of the wrong length', { command: 'XSHA256' }, `250 ${md5}`, 'sha256', undefined],
    ['no digest at all', { command: 'XMD5' }, '250 OK', 'md5', undefined],
  ]
  for (const [name, method, message, algorithm, expected] of cases) {
    it(name, () => assert.equal(parseHashReply(method, message, algorithm), expected))
  }
})
