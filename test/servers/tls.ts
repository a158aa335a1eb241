import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCertificates {
  /** PEM of the test CA: what a client must trust. */
  readonly ca: string
  /** Server certificate for 127.0.0.1 and localhost, signed by the CA, and its key (PEM). */
  readonly cert: string
  readonly key: string
  /** Files holding the same, for servers configured by path. */
  readonly files: { readonly ca: string; readonly cert: string; readonly key: string }
  /** A certificate from another CA, for "certificate mismatch" tests. */
  readonly untrusted: { readonly cert: string; readonly key: string }
  remove(): void
}

/** A throwaway CA and server certificates, made with the openssl command, for TLS test servers. */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'apubi-tls-'))
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const ca = (name: string) => {
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`)
  }
  const leaf = (name: string, issuer: string) => {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', `${name}.key`, '-out', `${name}.csr`)
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`,
      '-extfile', 'san.ext')
  }
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1,DNS:localhost\\n" > san.ext'], { cwd: dir })
  ca('test-ca')
  ca('other-ca')
  leaf('server', 'test-ca')
  leaf('stranger', 'other-ca')
  const read = (file: string) => readFileSync(join(dir, file), 'utf8')
  return {
    ca: read('test-ca.crt'),
    cert: read('server.crt'),
    key: read('server.key'),
    files: { ca: join(dir, 'test-ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') },
    untrusted: { cert: read('stranger.crt'), key: read('stranger.key') },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
