import { ftpSuite, startPyftpdlib } from '../servers/ftp-server.js'
import { backendConformance } from './conformance.js'

// An absolute suite path, from the server root (ftp-srv's suite uses a relative one).
const missing = 'python3-pyftpdlib is not installed: apt-get install -y python3-pyftpdlib (.ci/run does)'
backendConformance('ftp (pyftpdlib)', ftpSuite(startPyftpdlib, '/suite', missing))
