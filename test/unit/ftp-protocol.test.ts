import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FTPError } from 'basic-ftp'
import { parseMlst } from '../../src/backends/ftp-protocol.js'
import { codeFor } from '../../src/backends/ftp.js'

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
  ]
  for (const [name, error, op, connecting, expected] of cases) {
    it(name, () => assert.equal(codeFor(error, op, connecting), expected))
  }
})
