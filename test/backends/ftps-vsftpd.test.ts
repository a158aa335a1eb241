import { after } from 'node:test'
import { ftpSuite, startVsftpd } from '../servers/ftp-server.js'
import { makeTestCertificates } from '../servers/tls.js'
import { backendConformance } from './conformance.js'

// vsftpd, a second TLS implementation, demands that every data connection resume the control
// connection's TLS session (require_ssl_reuse), as FileZilla-style servers do; one suite per TLS mode.
const missing = 'vsftpd is not installed: apt-get install -y vsftpd (.ci/run does)'
const certs = makeTestCertificates()
after(() => certs.remove())

backendConformance(
  'ftpes (vsftpd, explicit TLS, session reuse required)',
  ftpSuite((root) => startVsftpd(root, { tls: certs.files }), '/suite', { missing, tlsCa: certs.ca }),
)
backendConformance(
  'ftps (vsftpd, implicit TLS, session reuse required)',
  ftpSuite((root) => startVsftpd(root, { tls: certs.files, implicit: true }), 'suite', { missing, tlsCa: certs.ca }),
)
