// A real SFTP server for the tests: Debian's OpenSSH sshd (package openssh-server) as a child process
// with a config, host key and client key of its own in a temporary folder, listening on 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './apubi-server.js'

export interface SftpServer {
  readonly host: string
  readonly port: number
  readonly user: string
  /** OpenSSH-format private key that the server accepts for `user`. */
  readonly privateKey: string
  /** The user's password; undefined where password logins cannot be set up (not running as root). */
  readonly password?: string
  /** The local folder the tests own, made writable by `user` (its parents must let others pass); the login directory (`~/`). */
  readonly root: string
  /** This server's host key as a known_hosts line: `[127.0.0.1]:<port> ssh-ed25519 AAAA…`. */
  readonly knownHostsLine: string
  /** `sftp://127.0.0.1:<port>/<root>/<path>`, an absolute path with each segment percent-encoded, no credentials. */
  url(path: string): string
  /** Kills the per-connection sshd processes: every client sees its connection drop. The server stays up. */
  dropConnections(): void
  close(): Promise<void>
}

export const SSHD = '/usr/sbin/sshd'
export const SSHD_MISSING = 'OpenSSH sshd is not installed: apt-get install -y openssh-server (.ci/run does)'

const HOST = '127.0.0.1'
// A dedicated account when we are root: sshd refuses root password logins, and the tests should not
// touch root's own keys or password. Created once, kept: other runs and parallel suites share it.
const TEST_USER = 'apubi-sftp'
// Distinctive, so a test can assert it never shows up in an error message.
const PASSWORD = 'Sftp-Sesame-5e1d7b'
const STARTUP_MS = 10_000

/**
 * sshd on a free port of 127.0.0.1, serving SFTP only (internal-sftp, starting in `root`), taking a
 * key and, when we are root, a password. `root` is made writable for the user.
 * @returns undefined when sshd is not installed.
 */
export async function startSshd(root: string): Promise<SftpServer | undefined> {
  if (!sshdInstalled()) return undefined
  const asRoot = process.getuid?.() === 0
  const user = asRoot ? await ensureTestUser() : userInfo().username
  if (asRoot) {
    const { uid, gid } = idsOf(user)
    await chown(root, uid, gid)
    // sshd checks that its privilege separation folder exists; the Debian package makes it only at boot.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
  }

  const dir = await mkdtemp(join(tmpdir(), 'apubi-sshd-'))
  // The user reads authorized_keys through this folder, with its own rights.
  await chmod(dir, 0o755)
  const hostKey = join(dir, 'host_ed25519')
  const clientKey = join(dir, 'client_ed25519')
  keygen(hostKey)
  keygen(clientKey)
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`), { mode: 0o644 })
  const port = await freePort()
  const config = join(dir, 'sshd_config')
  await writeFile(config, sshdConfig({ dir, hostKey, root, user, password: asRoot }))
  await dropUnknownOptions(config)

  const child = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
  // sshd logs each login to stderr; keep the tail to explain a failed start.
  let log = ''
  const listening = new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      log = (log + chunk).slice(-4000)
      if (log.includes('Server listening on')) resolve()
    })
  })
  const exited = once(child, 'exit')
  const gaveUp = Promise.race([exited.then(() => 'sshd exited'), sleep(STARTUP_MS, undefined, { ref: false }).then(() => `no "Server listening" after ${STARTUP_MS} ms`)])
  const failure = await Promise.race([listening.then(() => undefined), gaveUp])
  if (failure !== undefined) {
    child.kill()
    await rm(dir, { recursive: true, force: true })
    throw new Error(`sshd did not start: ${failure}\n${log}`)
  }
  const publicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/)
  return {
    host: HOST,
    port,
    user,
    privateKey: await readFile(clientKey, 'utf8'),
    ...(asRoot && { password: PASSWORD }),
    root,
    knownHostsLine: `[${HOST}]:${port} ${publicKey[0]} ${publicKey[1]}`,
    url: (path) => `sftp://${HOST}:${port}${`${root}/${path}`.split('/').map(encodeURIComponent).join('/')}`,
    dropConnections: () => {
      // Each connection is a privileged monitor and its unprivileged child; both hold the socket.
      killAll(descendants(child.pid!))
    },
    close: async () => {
      // Sessions outlive the listener: end them too, or a client left connected keeps them running.
      if (child.exitCode === null) killAll(descendants(child.pid!))
      if (child.exitCode === null) child.kill()
      await exited
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export function sshdInstalled(): boolean {
  return spawnSync(SSHD, ['-V'], { stdio: 'ignore' }).error === undefined
}

/** A fresh ed25519 key pair, without passphrase, in OpenSSH format: `file` and `file.pub`. */
export function keygen(file: string): void {
  const result = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'apubi-test', '-f', file], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.error?.message ?? result.stderr}`)
}

function sshdConfig(o: { dir: string; hostKey: string; root: string; user: string; password: boolean }): string {
  const sftp = `internal-sftp -d ${o.root}`
  return [
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKey}`,
    'PidFile none',
    // As root, without PAM: sshd checks the password against /etc/shadow itself. Not as root: sshd
    // cannot read /etc/shadow and takes the account for locked unless PAM's account check decides.
    `UsePAM ${o.password ? 'no' : 'yes'}`,
    `PasswordAuthentication ${o.password ? 'yes' : 'no'}`,
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    `AuthorizedKeysFile ${o.dir}/authorized_keys`,
    // Our files live in /tmp, whose permissions StrictModes would reject.
    'StrictModes no',
    `AllowUsers ${o.user}`,
    'PermitRootLogin no',
    `Subsystem sftp ${sftp}`,
    `ForceCommand ${sftp}`,
    'DisableForwarding yes',
    // The conformance suite opens many connections at once; the defaults (10:30:100) drop some.
    'MaxStartups 200',
    // OpenSSH 9.8+ would lock 127.0.0.1 out after the tests' deliberate failed logins.
    'PerSourcePenalties no',
    'LogLevel INFO',
    '',
  ].join('\n')
}

/** Removes the lines an older sshd does not know (PerSourcePenalties came with OpenSSH 9.8). */
async function dropUnknownOptions(config: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const test = spawnSync(SSHD, ['-t', '-f', config], { encoding: 'utf8' })
    if (test.status === 0) return
    const unknown = /Bad configuration option: (\w+)/.exec(test.stderr)?.[1]
    if (!unknown) throw new Error(`sshd rejects its test config:\n${test.stderr}`)
    const text = await readFile(config, 'utf8')
    await writeFile(config, text.split('\n').filter((line) => !line.startsWith(`${unknown} `)).join('\n'))
  }
}

/** Creates the test account if missing (a system user without a shell) and sets its password. */
async function ensureTestUser(): Promise<string> {
  if (spawnSync('id', ['-u', TEST_USER], { stdio: 'ignore' }).status !== 0) {
    const made = spawnSync('useradd', ['--system', '--home-dir', '/', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER], { encoding: 'utf8' })
    // 9: another suite created it meanwhile.
    if (made.status !== 0 && made.status !== 9) throw new Error(`useradd ${TEST_USER} failed: ${made.stderr}`)
  }
  // chpasswd fails while a parallel suite holds the lock on /etc/shadow: try again shortly.
  for (let attempt = 1; ; attempt++) {
    const set = spawnSync('chpasswd', [], { input: `${TEST_USER}:${PASSWORD}\n`, encoding: 'utf8' })
    if (set.status === 0) return TEST_USER
    if (attempt === 10) throw new Error(`chpasswd for ${TEST_USER} failed: ${set.stderr}`)
    await sleep(100 * attempt)
  }
}

/** The processes below `pid`, children before their own children. */
function descendants(pid: number): number[] {
  const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .map(Number)
    .filter((n) => n > 0)
  return children.flatMap((c) => [c, ...descendants(c)])
}

/** SIGKILL to each; one that ended meanwhile (ESRCH) is fine. */
function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e
    }
  }
}

function idsOf(user: string): { uid: number; gid: number } {
  const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim())
  const gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim())
  return { uid, gid }
}
