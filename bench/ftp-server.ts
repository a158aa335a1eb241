// The FTP server of the benches, in its own process: the references and our server both talk to it
// over loopback, and its work does not land on either side's event loop. vsftpd (plain FTP) when
// Debian's package is installed, as on real origins; ftp-srv otherwise, whose JavaScript costs a
// share of these two cores. argv[2] is its root; argv[3], comma-separated folders below it that
// must take uploads (vsftpd's anonymous user writes only where a folder is made writable); argv[4]
// `pure-ftpd` for Debian's pure-ftpd instead (unpacked from its package, see startPureFtpd).
import { startFtpSrv, startPureFtpd, startVsftpd, writableDir } from '../test/servers/ftp-server.js'
import { exitWithParent } from './child.js'
import type { FtpInfo } from './publish.js'

const [root, writable = '', which = 'vsftpd'] = process.argv.slice(2)
if (!root) throw new Error('usage: ftp-server.ts <root> [writable,folders] [vsftpd|pure-ftpd]')
const [server, ftp] = which === 'pure-ftpd' ? ['pure-ftpd', await startPureFtpd(root)] : ['vsftpd', await startVsftpd(root, {})]
if (which === 'pure-ftpd' && !ftp) throw new Error('pure-ftpd could not be unpacked (apt-get download pure-ftpd)')
const started = ftp ?? (await startFtpSrv(root))
for (const folder of writable.split(',').filter(Boolean)) await writableDir(started, folder)
const info: FtpInfo = { server: ftp ? server : 'ftp-srv', host: started.host, port: started.port, user: started.user, password: started.password }
console.log(JSON.stringify(info))
process.once('SIGTERM', () => void started.close().finally(() => process.exit(0)))
exitWithParent()
