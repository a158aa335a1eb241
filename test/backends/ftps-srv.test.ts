import { after } from 'node:test'
import { ftpSuite, startFtpSrv } from '../servers/ftp-server.js'
import { makeTestCertificates } from '../servers/tls.js'
import { backendConformance } from './conformance.js'

// FTPS on ftp-srv: explicit TLS (AUTH TLS) with the certificate checked against the test CA.
// Implicit TLS, session reuse and the other FTPS behaviour: ftps-vsftpd.test.ts, ftps-extras.test.ts.
const certs = makeTestCertificates()
after(() => certs.remove())

backendConformance('ftpes (ftp-srv, explicit TLS)', ftpSuite((root) => startFtpSrv(root, { tls: certs }), 'suite', { tlsCa: certs.ca }))
