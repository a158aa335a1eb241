// redact: text in, text out. The password of every URL goes, the user and everything else stays.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { REDACTED, redact } from '../../src/observability/redact.js'

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
