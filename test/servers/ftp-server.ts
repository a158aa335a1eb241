// Real FTP servers for the tests, started by the tests themselves: ftp-srv in process (plain, or
// FTPS explicit and implicit), pyftpdlib (Debian's python3-pyftpdlib) and vsftpd (Debian's vsftpd,
// FTPS only, demanding TLS session reuse) as child processes: other implementations, other quirks.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { FtpSrv, type FileSystem, type FtpConnection } from 'ftp-srv'
import { createFtpBackend } from '../../src/backends/ftp/index.js'
import type { Endpoint } from '../../src/backends/types.js'
import type { ConformanceSetup } from '../backends/conformance.js'

export type FtpScheme = 'ftp' | 'ftpes' | 'ftps'

export interface FtpServer {
  /** `ftpes` for explicit TLS (AUTH TLS), `ftps` for implicit TLS. */
  readonly scheme: FtpScheme
  readonly host: string
  readonly port: number
  readonly user: string
  /** URL-safe, so `url()` needs no encoding for it. */
  readonly password: string
  /** The local directory the server shows as `/`; it is also the login directory. */
  readonly root: string
  /** Anonymous FTP: any password logs `user` in, so only another user name is refused. */
  readonly anonymous?: boolean
  /** `<scheme>://user:password@host:port/<path>` with each segment of `path` percent-encoded. */
  url(path: string): string
  close(): Promise<void>
}

/** A server certificate and its key, in PEM. */
export interface TlsIdentity {
  readonly cert: string
  readonly key: string
}

/** Digest commands an ftp-srv can be given: none of our servers has one (see `hashCommands`). */
export type HashDialect = 'HASH' | 'XSHA256' | 'XMD5' | 'MD5'

export interface FtpSrvOptions {
  readonly user?: string
  readonly password?: string
  /** Serve FTPS with this certificate: explicit (AUTH TLS) unless `implicit`. */
  readonly tls?: TlsIdentity
  readonly implicit?: boolean
  /** Commands answered "502 Command blacklisted" (say EPSV, or RNFR and RNTO). */
  readonly blacklist?: readonly string[]
  /** A file system of the test's own for each login, to make a server refuse what real ones refuse. */
  readonly fileSystem?: (connection: FtpConnection, root: string) => FileSystem
  /** Digest commands to offer in FEAT and answer, as the servers that have them do. */
  readonly hashes?: readonly HashDialect[]
}

const HOST = '127.0.0.1'
const USER = 'apubi'
// Distinctive, so a test can assert it never shows up in an error message. ftp-srv strips `"` and
// tokens like `-a` from every argument, PASS included: keep it free of both.
const PASSWORD = 'Sesame-7f3a9c'
const WRONG_PASSWORD = 'Wrong-Guess-4711'
const PYTHON = '/usr/bin/python3'
const VSFTPD = '/usr/sbin/vsftpd'
const STARTUP_MS = 10_000

/** ftp-srv on an ephemeral port of 127.0.0.1, one user, passive mode on a free port range. */
export async function startFtpSrv(root: string, opts: FtpSrvOptions = {}): Promise<FtpServer> {
  const user = opts.user ?? USER
  const password = opts.password ?? PASSWORD
  // Below Linux's ephemeral range so client sockets never hold them; ftp-srv skips ports in use.
  const pasvMin = 20_000 + Math.floor(Math.random() * 10_000)
  const scheme: FtpScheme = !opts.tls ? 'ftp' : opts.implicit ? 'ftps' : 'ftpes'
  const server = new FtpSrv({
    // ftp-srv reads "ftps:" as implicit TLS; "ftp:" with `tls` offers AUTH TLS.
    url: `${scheme === 'ftps' ? 'ftps' : 'ftp'}://${HOST}:0`,
    pasv_url: HOST,
    pasv_min: pasvMin,
    pasv_max: pasvMin + 500,
    anonymous: false,
    tls: opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : false,
    blacklist: [...(opts.blacklist ?? [])],
    log: quietLogger(),
  })
  server.on('login', ({ connection, username, password: given }, resolve, reject) => {
    if (username !== user || given !== password) return reject(new Error('Login incorrect'))
    resolve({ root, ...(opts.fileSystem && { fs: opts.fileSystem(connection, root) }) })
  })
  if (opts.hashes) {
    const dialects = opts.hashes
    // ftp-srv emits 'connect' for each control connection, though its types do not list the event.
    const events: NodeJS.EventEmitter = server
    events.on('connect', ({ connection }: { connection: FtpConnection }) => hashCommands(connection, dialects))
  }
  await server.listen()
  const port = (internals(server).server.address() as { port: number }).port
  return {
    scheme,
    host: HOST,
    port,
    user,
    password,
    root,
    url: (path) => ftpUrl(scheme, user, password, port, path),
    close: async () => {
      await server.close()
    },
  }
}

/** Whether Debian's python3-pyftpdlib is importable by the system Python. */
export function pyftpdlibInstalled(): boolean {
  return spawnSync(PYTHON, ['-c', 'import pyftpdlib'], { stdio: 'ignore' }).status === 0
}

/**
 * pyftpdlib as a child process on 127.0.0.1, writable, rooted at `root`.
 * @returns undefined when python3-pyftpdlib is not installed.
 */
export async function startPyftpdlib(root: string): Promise<FtpServer | undefined> {
  if (!pyftpdlibInstalled()) return undefined
  const port = await freePort()
  const args = ['-m', 'pyftpdlib', '-i', HOST, '-p', String(port), '-u', USER, '-P', PASSWORD, '-d', root, '-w']
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  // pyftpdlib logs every command to stderr; keep the tail to explain a failed start.
  let log = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-4000)))
  const exited = once(child, 'exit')
  try {
    await waitForPort(port, () => child.exitCode !== null)
  } catch (e) {
    child.kill()
    throw new Error(`pyftpdlib did not start: ${(e as Error).message}\n${log}`)
  }
  return plainFtpServer(port, root, async () => {
    if (child.exitCode === null) child.kill()
    await exited
  })
}

export interface VsftpdOptions {
  /** Files of the server certificate and its key; without them, plain FTP. */
  readonly tls?: { readonly cert: string; readonly key: string }
  /** Implicit TLS (`ftps`) rather than AUTH TLS (`ftpes`). */
  readonly implicit?: boolean
  /** Commands vsftpd answers "550 Permission denied." (its `cmds_denied`), say EPSV. */
  readonly deny?: readonly string[]
  /** How long vsftpd lets a control connection sit idle before it drops it (its default: 300 s). */
  readonly idleSessionTimeoutS?: number
}

/** Whether Debian's vsftpd is installed. */
export function vsftpdInstalled(): boolean {
  return existsSync(VSFTPD)
}

/**
 * vsftpd as a child process on 127.0.0.1, rooted at `root`. With `tls` it demands TLS for login and
 * data, and that each data connection resume the control connection's TLS session
 * (`require_ssl_reuse`, as FileZilla Server does). vsftpd takes its users from PAM; to need no system
 * account it serves anonymous FTP with every write allowed (as the `ftp` user the package creates).
 * It refuses a chroot root that user may write to: `root` is made 0755, and only directories made
 * with `writableDir` take files.
 * @returns undefined when vsftpd is not installed.
 */
export async function startVsftpd(root: string, opts: VsftpdOptions): Promise<FtpServer | undefined> {
  if (!vsftpdInstalled()) return undefined
  const port = await freePort()
  const pasvMin = 20_000 + Math.floor(Math.random() * 10_000)
  const own = await mkdtemp(join(tmpdir(), 'apubi-vsftpd-'))
  const emptyDir = join(own, 'empty') // where vsftpd chroots its unprivileged pre-login process
  await mkdir(emptyDir)
  await chmod(root, 0o755)
  const settings: Record<string, string | number | boolean> = {
    listen: true,
    listen_address: HOST,
    listen_port: port,
    background: false,
    anonymous_enable: true,
    anon_root: root,
    local_enable: false,
    write_enable: true,
    anon_upload_enable: true,
    anon_mkdir_write_enable: true,
    anon_other_write_enable: true, // delete, rename, and overwrite an existing file
    anon_world_readable_only: false,
    anon_umask: '022',
    force_dot_files: true, // temporary files are dot files
    secure_chroot_dir: emptyDir,
    pasv_min_port: pasvMin,
    pasv_max_port: pasvMin + 100,
    // Containers refuse the namespaces and seccomp filters vsftpd would set up.
    isolate: false,
    isolate_network: false,
    seccomp_sandbox: false,
    xferlog_enable: false,
    syslog_enable: false,
    utf8_filesystem: true,
    ssl_enable: opts.tls !== undefined,
    ...(opts.tls && {
      implicit_ssl: opts.implicit ?? false,
      allow_anon_ssl: true,
      force_anon_logins_ssl: true,
      force_anon_data_ssl: true,
      require_ssl_reuse: true,
      ssl_ciphers: 'HIGH', // vsftpd 3.0.3's default (DES-CBC3-SHA) is one no current client offers
      rsa_cert_file: opts.tls.cert,
      rsa_private_key_file: opts.tls.key,
    }),
    ...(opts.deny?.length && { cmds_denied: opts.deny.join(',') }),
    ...(opts.idleSessionTimeoutS && { idle_session_timeout: opts.idleSessionTimeoutS }),
  }
  const config = join(own, 'vsftpd.conf')
  const line = ([key, value]: [string, string | number | boolean]) => `${key}=${value === true ? 'YES' : value === false ? 'NO' : value}`
  await writeFile(config, `${Object.entries(settings).map(line).join('\n')}\n`)
  const close = await startDaemon('vsftpd', VSFTPD, [config], port, own)
  const scheme: FtpScheme = !opts.tls ? 'ftp' : opts.implicit ? 'ftps' : 'ftpes'
  const user = 'anonymous'
  return {
    scheme,
    host: HOST,
    port,
    user,
    password: PASSWORD,
    root,
    anonymous: true,
    url: (path) => ftpUrl(scheme, user, PASSWORD, port, path),
    close,
  }
}

/** Where bench and tests unpack Debian's pure-ftpd: it conflicts with vsftpd, so it is not installed. */
const PURE_FTPD_DIR = join(tmpdir(), 'apubi-pure-ftpd')
const PURE_FTPD = join(PURE_FTPD_DIR, 'usr/sbin/pure-ftpd')
/** The account pure-ftpd's virtual user runs as: it refuses uid 0. */
const NOBODY = 65534

/**
 * Debian's pure-ftpd binary, unpacked once from its package (`apt-get download` + `dpkg -x`): the
 * packages of pure-ftpd and vsftpd conflict, so the two cannot both be installed.
 * @returns undefined when the package cannot be fetched (no apt, no network).
 */
export function pureFtpdBinary(): string | undefined {
  if (existsSync(PURE_FTPD)) return PURE_FTPD
  const debs = mkdtempSync(join(tmpdir(), 'apubi-pure-ftpd-deb-'))
  try {
    if (spawnSync('apt-get', ['download', 'pure-ftpd'], { cwd: debs }).status !== 0) return undefined
    const [deb] = readdirSync(debs).filter((name) => name.endsWith('.deb'))
    if (!deb || spawnSync('dpkg', ['-x', join(debs, deb), PURE_FTPD_DIR]).status !== 0) return undefined
    return existsSync(PURE_FTPD) ? PURE_FTPD : undefined
  } finally {
    rmSync(debs, { recursive: true, force: true })
  }
}

/**
 * pure-ftpd as a child process on 127.0.0.1, with its defaults but for what a test server needs: one
 * virtual user (PureDB) chrooted to `root`, running as nobody, dot files listed. Its password is
 * hashed with `openssl passwd -6` (crypt SHA-512): pure-pw's own argon2 hash costs ~4 s per login.
 * `root` and the folders that take uploads must be writable by nobody (`writableDir`).
 * @returns undefined when pure-ftpd cannot be unpacked.
 */
export async function startPureFtpd(root: string): Promise<FtpServer | undefined> {
  const binary = pureFtpdBinary()
  if (!binary) return undefined
  const port = await freePort()
  const pasvMin = 30_000 + Math.floor(Math.random() * 10_000)
  const own = await mkdtemp(join(tmpdir(), 'apubi-pure-ftpd-'))
  const hash = spawnSync('openssl', ['passwd', '-6', PASSWORD], { encoding: 'utf8' }).stdout.trim()
  await writeFile(join(own, 'passwd'), `${USER}:${hash}:${NOBODY}:${NOBODY}::${root}/./::::::::::::\n`)
  const mkdb = spawnSync(join(PURE_FTPD_DIR, 'usr/bin/pure-pw'), ['mkdb', join(own, 'pure.pdb'), '-f', join(own, 'passwd')], { encoding: 'utf8' })
  if (mkdb.status !== 0) throw new Error(`pure-pw mkdb failed: ${mkdb.stderr}`)
  await chmod(root, 0o755)
  const args = ['-S', `${HOST},${port}`, '-l', `puredb:${join(own, 'pure.pdb')}`, '-E', '-A', '-H', '-D', '-p', `${pasvMin}:${pasvMin + 100}`]
  return plainFtpServer(port, root, await startDaemon('pure-ftpd', binary, args, port, own))
}

/** A plain-FTP server on 127.0.0.1:`port` where USER logs in with PASSWORD. */
function plainFtpServer(port: number, root: string, close: () => Promise<void>): FtpServer {
  return { scheme: 'ftp', host: HOST, port, user: USER, password: PASSWORD, root, url: (path) => ftpUrl('ftp', USER, PASSWORD, port, path), close }
}

/**
 * Starts a forking FTP daemon in a process group of its own (each session is a process of its own,
 * and closing ends them all) and waits until it accepts on `port`. Resolves with its close, which
 * also removes `own`, the daemon's folder.
 */
async function startDaemon(name: string, binary: string, args: readonly string[], port: number, own: string): Promise<() => Promise<void>> {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  let log = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-4000)))
  const exited = once(child, 'exit')
  const stop = (): void => {
    process.off('exit', stop)
    if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGTERM')
  }
  // Detached, it would outlive a test process that ends without closing it.
  process.once('exit', stop)
  try {
    await waitForPort(port, () => child.exitCode !== null)
  } catch (e) {
    stop()
    await rm(own, { recursive: true, force: true })
    throw new Error(`${name} did not start: ${(e as Error).message}\n${log}`)
  }
  return async () => {
    stop()
    await exited
    await rm(own, { recursive: true, force: true })
  }
}

/** Makes `rel` below the server's root a directory its FTP user may write to (vsftpd's root is not). */
export async function writableDir(server: FtpServer, rel: string): Promise<string> {
  const dir = join(server.root, rel)
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o777)
  return dir
}

export interface FtpSuiteOptions {
  /** Why the suite is skipped when `start` finds no server. */
  readonly missing?: string
  /** The CA the server's certificate comes from, for FTPS. */
  readonly tlsCa?: string
}

/**
 * The conformance setup for one FTP server implementation: a fresh temporary root, the server on it,
 * and an ftp backend logged in. `suite` is the backend path of the suite's directory: relative (to
 * the login directory) or absolute, so that both kinds of path get exercised.
 */
export function ftpSuite(start: (root: string) => Promise<FtpServer | undefined>, suite: string, opts: FtpSuiteOptions | string = {}): ConformanceSetup {
  const { missing = 'the server is not installed', tlsCa } = typeof opts === 'string' ? { missing: opts } : opts
  return async (neutral) => {
    const context = { ...neutral, ...(tlsCa && { tlsCa }) }
    const root = await mkdtemp(join(tmpdir(), 'apubi-ftp-'))
    const server = await start(root)
    if (!server) {
      await rm(root, { recursive: true })
      return { skip: missing }
    }
    await writableDir(server, suite)
    const endpoint: Endpoint = { scheme: server.scheme, host: server.host, port: server.port, user: server.user, password: server.password }
    const backend = createFtpBackend(endpoint, context)
    // Anonymous FTP takes any password: a refused login needs a user it does not know.
    const wrong: Partial<Endpoint> = { password: WRONG_PASSWORD, ...(server.anonymous && { user: 'not-anonymous' }) }
    return {
      backend,
      root: suite,
      network: true,
      secret: server.password,
      wrongPassword: () => ({ backend: createFtpBackend({ ...endpoint, ...wrong }, context), password: WRONG_PASSWORD }),
      close: async () => {
        await backend.close()
        await server.close()
        await rm(root, { recursive: true, force: true })
      },
    }
  }
}

function ftpUrl(scheme: FtpScheme, user: string, password: string, port: number, path: string): string {
  const encoded = path.split('/').map(encodeURIComponent).join('/')
  return `${scheme}://${user}:${password}@${HOST}:${port}/${encoded.replace(/^\//, '')}`
}

/**
 * Makes one ftp-srv connection offer digest commands in FEAT and answer them, in the reply formats
 * of the servers that have them (ProFTPD mod_digest, Serv-U, IIS, FileZilla Server): none of the
 * servers we can install offers one. HASH starts on SHA-1, as FEAT's `*` says, until OPTS HASH.
 */
function hashCommands(connection: FtpConnection, dialects: readonly HashDialect[]): void {
  const conn = connection as unknown as { commands: { handle(message: string): Promise<unknown> }; fs?: FileSystem; reply: FtpConnection['reply'] }
  const handle = conn.commands.handle.bind(conn.commands)
  const algorithms: Readonly<Record<string, string>> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', MD5: 'md5' }
  let selected = 'SHA-1'
  const digest = async (path: string, algorithm: string): Promise<{ hex: string; size: number }> => {
    const { stream } = (await conn.fs!.read(path)) as { stream: Readable }
    const hash = createHash(algorithm)
    let size = 0
    for await (const chunk of stream) {
      hash.update(chunk as Buffer)
      size += (chunk as Buffer).length
    }
    return { hex: hash.digest('hex'), size }
  }
  conn.commands.handle = async (message: string) => {
    const space = message.indexOf(' ')
    const directive = (space < 0 ? message : message.slice(0, space)).trim().toUpperCase()
    const arg = space < 0 ? '' : message.slice(space + 1).trim()
    if (directive === 'FEAT') {
      const features = dialects.map((d) => (d === 'HASH' ? `HASH ${Object.keys(algorithms).map((a) => (a === selected ? `${a}*` : a)).join(';')}` : d))
      const reply = conn.reply
      // ftp-srv's own list, ours added before its closing line.
      conn.reply = (code, ...lines) => {
        conn.reply = reply
        return reply.call(connection, code, ...lines.slice(0, -1), ...features.map((f) => ({ message: ` ${f}`, raw: true })), ...lines.slice(-1))
      }
      return handle(message)
    }
    if (directive === 'OPTS' && /^HASH\b/i.test(arg) && dialects.includes('HASH')) {
      const name = arg.slice(4).trim().toUpperCase()
      if (!algorithms[name]) return connection.reply(504, 'Unknown algorithm')
      selected = name
      return connection.reply(200, name)
    }
    if (!(dialects as readonly string[]).includes(directive) || directive === 'OPTS') return handle(message)
    const algorithm = directive === 'HASH' ? algorithms[selected]! : directive === 'XSHA256' ? 'sha256' : 'md5'
    try {
      const { hex, size } = await digest(arg, algorithm)
      if (directive === 'HASH') return await connection.reply(213, `${selected} 0-${size} ${hex} ${arg}`)
      if (directive === 'MD5') return await connection.reply(251, `${arg} ${hex.toUpperCase()}`)
      return await connection.reply(250, hex)
    } catch (e) {
      return connection.reply(550, (e as Error).message)
    }
  }
}

/** ftp-srv keeps its net.Server on an undeclared property. */
function internals(server: FtpSrv): { server: { address(): unknown } } {
  return server as unknown as { server: { address(): unknown } }
}

/** A bunyan-shaped logger that drops everything: ftp-srv logs every command and error at length. */
function quietLogger(): unknown {
  const drop = (): void => {}
  const logger: Record<string, unknown> = { trace: drop, debug: drop, info: drop, warn: drop, error: drop, fatal: drop }
  logger.child = () => logger
  return logger
}

/** A port nobody listens on right now (the child binds it a moment later). */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, HOST)
  await once(probe, 'listening')
  const { port } = probe.address() as { port: number }
  probe.close()
  await once(probe, 'close')
  return port
}

async function waitForPort(port: number, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + STARTUP_MS
  while (!(await accepts(port))) {
    if (gaveUp()) throw new Error('the process exited')
    if (Date.now() > deadline) throw new Error(`port ${port} still closed after ${STARTUP_MS} ms`)
    await sleep(50)
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
