// Real FTP servers for the tests, started by the tests themselves: ftp-srv in process, and pyftpdlib
// (Debian's python3-pyftpdlib) as a child process, a second implementation with its own quirks.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FtpSrv } from 'ftp-srv'
import { createFtpBackend } from '../../src/backends/ftp.js'
import type { Endpoint } from '../../src/backends/types.js'
import type { ConformanceSetup } from '../backends/conformance.js'

export interface FtpServer {
  readonly host: string
  readonly port: number
  readonly user: string
  /** URL-safe, so `url()` needs no encoding for it. */
  readonly password: string
  /** The local directory the server shows as `/`; it is also the login directory. */
  readonly root: string
  /** `ftp://user:password@host:port/<path>` with each segment of `path` percent-encoded. */
  url(path: string): string
  close(): Promise<void>
}

export interface FtpSrvOptions {
  readonly user?: string
  readonly password?: string
}

const HOST = '127.0.0.1'
const USER = 'apubi'
// Distinctive, so a test can assert it never shows up in an error message. ftp-srv strips `"` and
// tokens like `-a` from every argument, PASS included: keep it free of both.
const PASSWORD = 'Sesame-7f3a9c'
const WRONG_PASSWORD = 'Wrong-Guess-4711'
const PYTHON = '/usr/bin/python3'
const STARTUP_MS = 10_000

/** ftp-srv on an ephemeral port of 127.0.0.1, one user, passive mode on a free port range. */
export async function startFtpSrv(root: string, opts: FtpSrvOptions = {}): Promise<FtpServer> {
  const user = opts.user ?? USER
  const password = opts.password ?? PASSWORD
  // Below Linux's ephemeral range so client sockets never hold them; ftp-srv skips ports in use.
  const pasvMin = 20_000 + Math.floor(Math.random() * 10_000)
  const server = new FtpSrv({
    url: `ftp://${HOST}:0`,
    pasv_url: HOST,
    pasv_min: pasvMin,
    pasv_max: pasvMin + 500,
    anonymous: false,
    log: quietLogger(),
  })
  server.on('login', ({ username, password: given }, resolve, reject) => {
    if (username === user && given === password) resolve({ root })
    else reject(new Error('Login incorrect'))
  })
  await server.listen()
  const port = (internals(server).server.address() as { port: number }).port
  return {
    host: HOST,
    port,
    user,
    password,
    root,
    url: (path) => ftpUrl(user, password, port, path),
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
  return {
    host: HOST,
    port,
    user: USER,
    password: PASSWORD,
    root,
    url: (path) => ftpUrl(USER, PASSWORD, port, path),
    close: async () => {
      if (child.exitCode === null) child.kill()
      await exited
    },
  }
}

/**
 * The conformance setup for one FTP server implementation: a fresh temporary root, the server on it,
 * and an ftp backend logged in. `suite` is the backend path of the suite's directory: relative (to
 * the login directory) or absolute, so that both kinds of path get exercised.
 */
export function ftpSuite(start: (root: string) => Promise<FtpServer | undefined>, suite: string, missing = 'the server is not installed'): ConformanceSetup {
  return async (context) => {
    const root = await mkdtemp(join(tmpdir(), 'apubi-ftp-'))
    const server = await start(root)
    if (!server) {
      await rm(root, { recursive: true })
      return { skip: missing }
    }
    await mkdir(join(root, suite))
    const endpoint: Endpoint = { scheme: 'ftp', host: server.host, port: server.port, user: server.user, password: server.password }
    const backend = createFtpBackend(endpoint, context)
    return {
      backend,
      root: suite,
      network: true,
      secret: server.password,
      wrongPassword: () => ({ backend: createFtpBackend({ ...endpoint, password: WRONG_PASSWORD }, context), password: WRONG_PASSWORD }),
      close: async () => {
        await backend.close()
        await server.close()
        await rm(root, { recursive: true, force: true })
      },
    }
  }
}

function ftpUrl(user: string, password: string, port: number, path: string): string {
  const encoded = path.split('/').map(encodeURIComponent).join('/')
  return `ftp://${user}:${password}@${HOST}:${port}/${encoded.replace(/^\//, '')}`
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
