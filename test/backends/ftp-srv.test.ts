import { ftpSuite, startFtpSrv } from '../servers/ftp-server.js'
import { backendConformance } from './conformance.js'

// A relative suite path: resolved from the login directory (pyftpdlib's suite uses an absolute one).
backendConformance('ftp (ftp-srv)', ftpSuite(startFtpSrv, 'suite'))
