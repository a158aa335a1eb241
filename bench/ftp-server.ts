// The FTP server of the benches, in its own process: the references and our server both talk to it
// over loopback, and its work does not land on either side's event loop. vsftpd (plain FTP) when
// Debian's package is installed, as on real origins; ftp-srv otherwise, whose JavaScript costs a
// share of these two cores. argv[2] is its root; argv[3], comma-separated folders below it that
// must take uploads (vsftpd's anonymous user writes only where a folder is made writable).
import { startFtpSrv, startVsftpd, writableDir } from '../test/servers/ftp-server.js'
import { exitWithParent } from './child.js'
import type { FtpInfo } from './publish.js'

const [root, writable = ''] = process.argv.slice(2)
if (!root) throw new Error('usage: ftp-server.ts <root> [writable,folders]')
const vsftpd = await startVsftpd(root, {})
const ftp = vsftpd ?? (await startFtpSrv(root))
for (const folder of writable.split(',').filter(Boolean)) await writableDir(ftp, folder)
const info: FtpInfo = { server: vsftpd ? 'vsftpd' : 'ftp-srv', host: ftp.host, port: ftp.port, user: ftp.user, password: ftp.password }
console.log(JSON.stringify(info))
process.once('SIGTERM', () => void ftp.close().finally(() => process.exit(0)))
exitWithParent()
