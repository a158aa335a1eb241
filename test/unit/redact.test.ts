// redact: text in, text out. The password of every URL goes, the user and everything else stays.
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { createLogger } from '../../src/observability/logger.js'
import { REDACTED, redact, redactWith, secretValuesIn } from '../../src/observability/redact.js'

describe('redact', () => {
  const cases: Array<[what: string, text: string, expected: string]> = [
    ['ftp', 'ftp://editor:s3cret@origin.example/in/a.ts', `ftp://editor:${REDACTED}@origin.example/in/a.ts`],
    ['ftp with a port', 'ftp://editor:s3cret@origin.example:2121/a.ts', 'ftp://editor:***@origin.example:2121/a.ts'],
    ['sftp', 'sftp://deploy:hunter2@10.0.0.7:22/%2Fsrv/cdn/', 'sftp://deploy:***@10.0.0.7:22/%2Fsrv/cdn/'],
    ['s3', 's3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG@bucket/key.ts', 's3://AKIAIOSFODNN7EXAMPLE:***@bucket/key.ts'],
    ['http', 'http://user:pass@origin.example/a.ts', 'http://user:***@origin.example/a.ts'],
    ['https with query and fragment', 'https://user:pass@origin.example/a.ts?x=1#y', 'https://user:***@origin.example/a.ts?x=1#y'],
    ['upper-case scheme', 'FTP://user:pass@host/a', 'FTP://user:***@host/a'],
    ['no path after the host', 'ftp://user:pass@host', 'ftp://user:***@host'],
    ['percent-encoded characters in the password', 'ftp://user:p%40ss%3Aw%2Frd%25@host/a', 'ftp://user:***@host/a'],
    ['an unencoded @ in the password', 'ftp://user:p@ss@host/a', 'ftp://user:***@host/a'],
    ['a colon in the password', 'ftp://user:pa:ss@host/a', 'ftp://user:***@host/a'],
    ['an encoded user is kept', 'ftp://us%40er:pass@host/a', 'ftp://us%40er:***@host/a'],
    ['no user, only a password', 'ftp://:pass@host/a', 'ftp://:***@host/a'],
    [
      'several URLs in one text',
      'copy ftp://a:one@h1/x to sftp://b:two@h2/y failed; see https://c:three@h3',
      'copy ftp://a:***@h1/x to sftp://b:***@h2/y failed; see https://c:***@h3',
    ],
    ['URLs next to each other without a space', 'ftp://a:one@h1,ftp://b:two@h2', 'ftp://a:***@h1,ftp://b:***@h2'],
    ['inside a JSON log line', '{"msg":"x","url":"ftp://a:one@h1/x"}', '{"msg":"x","url":"ftp://a:***@h1/x"}'],
  ]
  for (const [what, text, expected] of cases) {
    it(`hides the password: ${what}`, () => {
      assert.equal(redact(text), expected)
    })
  }

  const untouched: Array<[what: string, text: string]> = [
    ['a URL without credentials', 'ftp://origin.example/in/a.ts'],
    ['a user without password', 'ftp://editor@origin.example/in/a.ts'],
    ['a host with a port', 'http://origin.example:8080/a.ts'],
    ['a port, then an @ in the path', 'http://origin.example:8080/people/a@b.ts'],
    ['a port, then an @ in the query', 'http://origin.example:8080/a.ts?by=a@b'],
    ['an e-mail address after a URL', 'see http://origin.example:8080 or write to ops@example.com'],
    ['a file URL', 'file:///srv/cdn/a%20b.ts'],
    ['plain text with colons and @', 'at 12:30 user:name@example failed'],
  ]
  for (const [what, text] of untouched) {
    it(`leaves alone ${what}`, () => {
      assert.equal(redact(text), text)
    })
  }
})

describe('redact: query parameters that carry a credential', () => {
  const cases: Array<[string, string]> = [
    ['https://cdn.example/vod/m.m3u8?token=abc123&start=5', 'https://cdn.example/vod/m.m3u8?token=***&start=5'],
    ['https://cdn.example/v.ts?hdnts=exp=1~acl=/*~hmac=ff&x=1', 'https://cdn.example/v.ts?hdnts=***&x=1'],
    ['https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=9f&X-Amz-Expires=60', 'https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60'],
    ['https://d.cloudfront.net/a?Policy=eyJ&Signature=AbC~&Key-Pair-Id=K2', 'https://d.cloudfront.net/a?Policy=***&Signature=***&Key-Pair-Id=***'],
    ['http://h/a?api_key=s3cret#frag', 'http://h/a?api_key=***#frag'],
    ['"source":"http://h/a?access_token=s3cret"', '"source":"http://h/a?access_token=***"'],
    ['http://h/a?keyframe=3&monkey=1', 'http://h/a?keyframe=3&monkey=1'],
  ]
  for (const [text, expected] of cases) it(text, () => assert.equal(redact(text), expected))
})

describe('redact: fields that name a secret, in JSON text', () => {
  const cases: Array<[what: string, text: string, expected: string]> = [
    ['a password at the top', '{"user":"u","password":"s3cret"}', '{"user":"u","password":"***"}'],
    ['nested in an error', '{"err":{"type":"Error","endpoint":{"host":"h","password":"p@ss w:rd"}}}', '{"err":{"type":"Error","endpoint":{"host":"h","password":"***"}}}'],
    ['escaped quotes inside the value', '{"password":"a\\"b\\\\c","x":1}', '{"password":"***","x":1}'],
    ['an S3 secret access key', '{"credentials":{"accessKeyId":"AKIA","secretAccessKey":"wJalr/K7"}}', '{"credentials":{"accessKeyId":"AKIA","secretAccessKey":"***"}}'],
    ['a private key, an authorization header, a SOAP password', '{"privateKey":"-----BEGIN","authorization":"Basic dTpw","soapPassword":"pw"}', '{"privateKey":"***","authorization":"***","soapPassword":"***"}'],
    ['tokens', '{"token":"adm-1","sessionToken":"FwoG","leaseToken":3}', '{"token":"***","sessionToken":"***","leaseToken":3}'],
  ]
  for (const [what, text, expected] of cases) {
    it(`hides the value: ${what}`, () => {
      assert.equal(redact(text), expected)
    })
  }
  it('leaves other fields alone, also those that merely mention a secret in their value', () => {
    const text = '{"msg":"wrong password","user":"editor","key":"ssh-ed25519 AAAA","reason":"password mismatch"}'
    assert.equal(redact(text), text)
  })
})

describe('redactWith: the configuration\'s known secrets', () => {
  it('hides each secret wherever it appears: plain, percent-encoded, JSON-escaped, and the URL forms too', () => {
    const hide = redactWith(['Open-Sesame-42', 'p@ss"word', 'wJalrXUtnFEMI/K7MDENG'])
    assert.equal(hide('login failed with Open-Sesame-42 for ftp://u:other@h/x'), 'login failed with *** for ftp://u:***@h/x')
    assert.equal(hide('{"msg":"bad p@ss\\"word"}'), '{"msg":"bad ***"}')
    assert.equal(hide('signature of wJalrXUtnFEMI%2FK7MDENG'), 'signature of ***')
  })

  it('ignores secrets too short to search for without garbling the text, and behaves as redact without any', () => {
    assert.equal(redactWith(['abc'])('abc abc'), 'abc abc')
    assert.equal(redactWith([]), redact)
  })
})

describe('secretValuesIn', () => {
  it('finds passwords and keys of a configuration at any depth, and the passwords of URLs, but not file paths', () => {
    const config = {
      port: 8080,
      secretKey: 'k'.repeat(64),
      secretKeyFile: '/run/secrets/key',
      soapPassword: 'soap-pw',
      cdnBase: 'ftp://cdn:c%40dn-pw@cdn.example/vod/',
      credentials: [{ url: 'sftp://origin:22', user: 'deploy', password: 'cred-pw', privateKeyFile: '/keys/id' }],
      s3Buckets: { media: { accessKeyId: 'AKIA', secretAccessKey: 's3-secret' } },
      fileRoots: ['/srv'],
      adminTokens: [{ token: 'admin-token-0123456789', role: 'operator' }],
    }
    assert.deepEqual(secretValuesIn(config).sort(), ['admin-token-0123456789', 'c%40dn-pw', 'c@dn-pw', 'cred-pw', 'k'.repeat(64), 's3-secret', 'soap-pw'].sort())
  })
})

describe('the logger', () => {
  /** Every line a logger with these known secrets writes for `log`. */
  function lines(secrets: readonly string[], log: (logger: ReturnType<typeof createLogger>) => void): string {
    let written = ''
    const sink = new Writable({
      write(chunk, _encoding, done) {
        written += String(chunk)
        done()
      },
    })
    log(createLogger('debug', sink, secrets))
    return written
  }

  it('cuts a text field past 1,024 characters, marked, so a client\'s 60 KB value costs no 60 KB line', () => {
    const url = `ftp://cdn.example/${'x'.repeat(60_000)}-end`
    const line = lines([], (logger) => logger.warn({ source: url, taskId: 't1' }, 'task failed'))
    assert.ok(line.length < 2_000, `${line.length} characters`)
    assert.match(line, /"source":"ftp:\/\/cdn\.example\/x+… \(cut, 60022 characters in all\)"/)
    assert.match(line, /"taskId":"t1"/)
  })

  it('redacts an error whole: nested causes, stacks, and properties holding a decoded password', () => {
    const cause = new Error('connect to ftp://editor:s3cret@origin.example/a.ts refused')
    const error = Object.assign(new Error('publish failed', { cause: new Error('login: ftp://editor:s3cret@origin.example', { cause }) }), {
      endpoint: { host: 'origin.example', user: 'editor', password: 's3cret' },
    })
    const line = lines([], (logger) => logger.error({ err: error, taskId: 't1' }, 'task hit an internal error'))
    assert.match(line, /ftp:\/\/editor:\*\*\*@origin\.example\/a\.ts refused/)
    assert.match(line, /"password":"\*\*\*"/)
    assert.doesNotMatch(line, /s3cret/)
  })

  it('hides the configured secrets in any field or message', () => {
    const line = lines(['cfg-Secret-77'], (logger) => logger.warn({ detail: 'server said: bad pass cfg-Secret-77' }, 'retrying with cfg-Secret-77'))
    assert.equal(JSON.parse(line).detail, 'server said: bad pass ***')
    assert.equal(JSON.parse(line).msg, 'retrying with ***')
  })
})
