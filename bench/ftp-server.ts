// ftp-srv for the publishing bench, in its own process: the reference copy and our server both talk
// to it over loopback, and its work does not land on either side's event loop. argv[2] is its root.
import { startFtpSrv } from '../test/servers/ftp-server.js'
import { exitWithParent } from './child.js'
import type { FtpInfo } from './publish.js'

const root = process.argv[2]
if (!root) throw new Error('usage: ftp-server.ts <root>')
const ftp = await startFtpSrv(root)
const info: FtpInfo = { host: ftp.host, port: ftp.port, user: ftp.user, password: ftp.password }
console.log(JSON.stringify(info))
exitWithParent()
