// The transport part of `npm run bench`: a large file and an HLS-like package published FTP→SFTP and
// S3→FTP on loopback, each beside `rclone copy` doing the same copy with the same parallelism, in the
// same run, on the same machine.
//
// - Servers, each a process of its own: vsftpd or ftp-srv (bench/ftp-server.ts; the origin of FTP→SFTP and the
//   destination of S3→FTP), pure-ftpd (the same origin folder, for FTP (pure-ftpd)→SFTP), s3rver (bench/s3-server.ts), OpenSSH sshd (test/servers/sftp-server.ts).
// - Ours: LoadAsset, then GetTaskStatus every 50 ms until SUCCESS; APUBI_PARALLEL_FILES=4 and
//   APUBI_CONNECTIONS_PER_HOST=8 (4 files in flight, each holding a connection on both sides). Once with
//   the default digests (MD5+SHA-256, computed while streaming), once with APUBI_CHECKSUMS=none.
//   A fresh pair of servers per scenario, so each peak RSS (VmHWM) is that scenario's.
// - rclone: `rclone copy src dst --transfers 4 --checkers 4 --retries 1`, remotes from environment
//   variables, defaults otherwise. What `rclone copy` checks after each file: its size, and a hash
//   only when source and destination have a hash type in common. rclone's ftp backend has none (FTP
//   "does not support any checksums" in its docs); its sftp backend hashes by running md5sum/sha1sum
//   over SSH, and our sshd runs internal-sftp only (no shell: shell_type=none); s3 has MD5, but the
//   other side of S3→FTP has none. So plain rclone computes no digest on either pair, and checks
//   sizes alone, as our APUBI_CHECKSUMS=none does: it is the reference of that row.
// - rclone with digests, the reference of our default row: the same copy into rclone's hasher overlay
//   of the destination (hashes=md5,sha256), which computes MD5 and SHA-256 of every byte it uploads,
//   as it streams, and records them (in a bolt database, emptied before each run); with S3 as the
//   source rclone then also compares the MD5 with the object's ETag. The same work as our default
//   copy: both digests, recorded, and checked where the other side has one.
// - Reading the S3→FTP package row: rclone 1.60 uploads to ftp-srv at ~145 ms per file per transfer
//   whatever the source (local→ftp-srv alike), while it reads from ftp-srv at ~45 ms: that row
//   measures rclone's FTP uploads to this server more than our speed.
// - Time rows: ours / rclone doing the same work (our default beside rclone with digests, ours
//   without beside plain rclone), target ≤ 100 % (ours no slower); one more row shows our default
//   beside plain rclone, for information. Peak RSS rows: target ≤ 250 MB for ours; the matching
//   rclone's peak (sampled every 50 ms) is shown as the reference, for information. CPU rows, for
//   information: user + system seconds of one copy, ours the server's process tree (children such as
//   `ssh` included), rclone's from its exit; unlike times, they hold on a machine others share.
// - Each copy is checked on disk afterwards (every file, its size, nothing more: no temporary file
//   left), then deleted, so every run writes into an empty destination.
//
// Environment: BENCH_TRANSPORTS=0 skips this part (it is long); BENCH_PACKAGE_FILES (files in the
// package, default 2000); BENCH_ROUTES (comma-separated parts of route names, e.g. `pure-ftpd,S3`:
// only those routes); BENCH_FAR_FILES (files of the package copied to the far SFTP destination,
// default 400); BENCH_FILE_MB and BENCH_ROUNDS as for the rest of the bench.
// - The far route: the SFTP destination behind the test proxy's far link (20 ms each way, 1 Gbit/s),
//   the FTP source near. Round trips per file per lane, two ways: from the time (time × lanes ÷
//   (files × round trip): as if round trips were all the copy waited for, CPU waits included), and
//   counted by the proxy (the times a client sent again after an answer reached it, all connections,
//   ÷ files; the SSH logins included). Our lanes grow past 4 while round trips limit them (up to
//   APUBI_CONNECTIONS_PER_HOST, src/transfer/lanes.ts); rclone keeps its --transfers 4. The figure
//   from the time is given at 4 lanes and over the time each connection to the destination was
//   open, summed (each of our lanes holds one; rclone's connections are not all transfers); the count
//   at the proxy does not depend on lanes.
// - The far S3 route: s3rver behind a far link of its own (the same 20 ms each way, 1 Gbit/s), to the
//   far SFTP destination; our server's APUBI_S3_ENDPOINT and rclone's s3-far remote point at its
//   proxy. Round trips are counted at each proxy: the destination's and the source's.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { ApubiClient } from '../src/client/apubi-client.js'
import type { TestServer } from '../test/servers/apubi-server.js'
import { startFaultProxy, type FaultProxy } from '../test/servers/fault-proxy.js'
import { SSHD_MISSING, sshdInstalled, startSshd } from '../test/servers/sftp-server.js'
import { peakRssMb, startChild, treeCpuSeconds } from './child.js'
import { under, verifyCopy, writeHlsPackage, type Manifest } from './hls-package.js'
import { ftpUrl, writeRandomFile, type FtpInfo } from './publish.js'
import { obscure, rcloneCopy, rcloneVersion, remotesEnv } from './rclone.js'
import type { S3Info } from './s3-server.js'

/** A row of bench/run.ts's table. */
export interface TransportRow {
  readonly metric: string
  readonly ours?: number
  readonly reference?: number
  readonly digits: number
  readonly target: string
  /** Whether the target is met; absent for rows shown for information. */
  readonly met?: (ours: number, ratio: number) => boolean
}

/** What bench/run.ts lends this part. */
export interface TransportBench {
  /** The run's folder, removed at its end. */
  readonly work: string
  readonly rounds: number
  readonly fileMib: number
  /** Where this part's rows go, measured or not. */
  readonly rows: TransportRow[]
  /** Run (last in, first out) when the bench ends or is interrupted. */
  readonly cleanups: Array<() => Promise<unknown>>
  log(message: string): void
  /** Our server as a child process, stopped by the bench's cleanup if not before. */
  apubiServer(env: Record<string, string>): Promise<TestServer>
}

const PARALLEL_FILES = 4
const CONNECTIONS_PER_HOST = 8
const RSS_TARGET_MB = 250
const SHARED_MEMORY = '/dev/shm'
const POLL_MS = 50
/** The far SFTP destination: 20 ms each way, 1 Gbit/s. */
const FAR_DELAY_MS = 20
const FAR_BYTES_PER_SECOND = 125e6
/** Far source and far destination: s3rver and the SFTP destination, each behind its own far link. */
const FAR_S3_ROUTE = `S3→SFTP, both ${FAR_DELAY_MS * 2} ms away`
const RCLONE_FLAGS = ['--transfers', String(PARALLEL_FILES), '--checkers', String(PARALLEL_FILES), '--retries', '1']

/** The ways to a copy's source and destination, for our server and for rclone. */
interface Route {
  readonly name: string
  /** Our source URL of a path below the origin folder. */
  oursFrom(rel: string): string
  /** Our destination URL of a path below contender `who`'s folder. */
  oursTo(who: Contender, rel: string): string
  rcloneFrom(rel: string): string
  /** rclone's destination of a path below peer `who`'s folder ('' for the folder itself). */
  rcloneTo(who: Peer, rel: string): string
  /** The local folder where `who`'s copies land. */
  folder(who: Contender | Peer): string
  /**
   * Through the far link: its round trip in seconds, the data copied that way (instead of all), the
   * round trips counted at the destination's proxy and, for a far source, at the source's.
   */
  readonly far?: { readonly roundTripS: number; readonly data: readonly Data[]; turns(): number; sourceTurns?(): number; readonly destination: FaultProxy }
  /** Our server's settings for this route, over the bench's. */
  readonly env?: Record<string, string>
}

/** Ours with the default digests, and ours with APUBI_CHECKSUMS=none. */
type Contender = 'ours' | 'bare'
/** Plain `rclone copy`, and the same into rclone's hasher overlay of the destination (MD5+SHA-256). */
type Peer = 'rclone' | 'rclone-sums'
const LABELS: Record<Contender | Peer, string> = { rclone: 'rclone copy', 'rclone-sums': 'rclone copy with digests', ours: 'ours', bare: 'ours without digests' }
/** Who does the same work as whom: the reference of each of our rows. */
const PEER_OF: Record<Contender, Peer> = { ours: 'rclone-sums', bare: 'rclone' }

/** What is copied: a file, or a folder (published as a directory, trailing '/'). */
interface Data {
  readonly label: string
  readonly rel: string
  readonly directory: boolean
  readonly bytes: number
  /** Relative to the destination folder. */
  readonly expected: Manifest
}

export async function transports(bench: TransportBench): Promise<void> {
  if (process.env['BENCH_TRANSPORTS'] === '0') return bench.log('transports: skipped (BENCH_TRANSPORTS=0)')
  const { work, rounds, fileMib, log } = bench
  const packageFiles = Number(process.env['BENCH_PACKAGE_FILES'] ?? 2000)
  const routeNames = process.env['BENCH_ROUTES']?.split(',').map((name) => name.trim())
  const selected = (route: string) => !routeNames || routeNames.some((name) => route.includes(name))
  if (!sshdInstalled()) throw new Error(SSHD_MISSING)
  const rclone = rcloneVersion()
  log(`transports: ${rclone ? `${rclone}, rclone copy ${RCLONE_FLAGS.join(' ')}` : 'rclone not installed (apt-get install -y rclone): ours only'}`)

  // The servers store in memory where the machine has it (/dev/shm). On ext4, each run of a round
  // creates files where the run before it deleted as many, and for minutes after a deletion ext4's
  // inode allocator passes over the freed inodes one by one (recently_deleted, measured: half of
  // sshd's time): whoever copies first in a round would run on a faster disk than the others.
  const parent = existsSync(SHARED_MEMORY) ? SHARED_MEMORY : work
  // When we are root, sshd logs the SFTP user in as another account, which must pass through to its root.
  if (parent === work) chmodSync(work, 0o711)
  const base = mkdtempSync(join(parent, 'apubi-bench-transports-'))
  bench.cleanups.push(async () => rmSync(base, { recursive: true, force: true }))
  const ftpRoot = join(base, 'ftp')
  const origin = join(ftpRoot, 'origin')
  const sftpRoot = join(base, 'sftp')
  const secrets = join(base, 'secrets')
  mkdirSync(join(origin, 'pkg'), { recursive: true })
  mkdirSync(sftpRoot)
  mkdirSync(secrets, { mode: 0o700 })
  chmodSync(base, 0o711)

  const fileBytes = fileMib * (1 << 20)
  const fileLabel = fileMib % 1024 === 0 ? `${fileMib / 1024} GiB` : `${fileMib} MiB`
  log(`transports: writing a ${fileLabel} file and a ${packageFiles}-file HLS-like package on the FTP origin`)
  await writeRandomFile(join(origin, 'big.bin'), fileMib)
  const pkg = await writeHlsPackage(join(origin, 'pkg'), packageFiles)
  const pkgBytes = [...pkg.values()].reduce((a, b) => a + b, 0)
  // The far link's package: the first files of the package, in a folder of their own.
  const farFiles = [...pkg].slice(0, Number(process.env['BENCH_FAR_FILES'] ?? 400))
  for (const [rel] of farFiles) {
    mkdirSync(dirname(join(origin, 'far', rel)), { recursive: true })
    copyFileSync(join(origin, 'pkg', rel), join(origin, 'far', rel))
  }
  const farPkg = new Map(farFiles)
  const farBytes = farFiles.reduce((a, [, size]) => a + size, 0)

  const ftp = await startChild<FtpInfo>('./ftp-server.ts', [ftpRoot, 'dst-ours,dst-bare,dst-rclone,dst-rclone-sums'])
  bench.cleanups.push(() => ftp.stop())
  // A second FTP origin on the same folder, an implementation the project does not choose either.
  const pureFtp = await startChild<FtpInfo>('./ftp-server.ts', [ftpRoot, '', 'pure-ftpd'])
  bench.cleanups.push(() => pureFtp.stop())
  const s3 = await startChild<S3Info>('./s3-server.ts')
  bench.cleanups.push(() => s3.stop())
  const sftp = await startSshd(sftpRoot)
  if (!sftp) throw new Error(SSHD_MISSING)
  bench.cleanups.push(() => sftp.close())
  // The far SFTP destination: the same sshd behind a link of FAR_DELAY_MS each way at FAR_BYTES_PER_SECOND.
  const far = await startFaultProxy(sftp.host, sftp.port, { delayMs: FAR_DELAY_MS, bytesPerSecond: FAR_BYTES_PER_SECOND })
  bench.cleanups.push(() => far.close())
  // The far S3 source: s3rver behind a far link of its own, as far as the SFTP destination.
  const farS3 = await startFaultProxy(new URL(s3.info.endpoint).hostname, Number(new URL(s3.info.endpoint).port), { delayMs: FAR_DELAY_MS, bytesPerSecond: FAR_BYTES_PER_SECOND })
  bench.cleanups.push(() => farS3.close())
  const farS3Endpoint = `http://${farS3.host}:${farS3.port}`
  // Only what the chosen routes read from S3.
  const toS3 = [...(selected('S3→FTP') ? ['big.bin', ...[...pkg.keys()].map((rel) => `pkg/${rel}`)] : []), ...(selected(FAR_S3_ROUTE) ? [...farPkg.keys()].map((rel) => `far/${rel}`) : [])]
  log(`transports: uploading ${toS3.length} files to s3rver`)
  await uploadToS3(s3.info, origin, toS3)
  // On disk before the first measured copy, so its write-back does not slow that one alone.
  spawnSync('sync')

  const keyFile = join(secrets, 'id_ed25519')
  writeFileSync(keyFile, sftp.privateKey, { mode: 0o600 })
  const knownHosts = join(secrets, 'known_hosts')
  const farHostsLine = sftp.knownHostsLine.replace(`]:${sftp.port} `, `]:${far.port} `)
  writeFileSync(knownHosts, `${sftp.knownHostsLine}\n${farHostsLine}\n`)
  const config = join(secrets, 'apubi.json')
  const credentials = [sftp.port, far.port].map((port) => ({ url: `sftp://${sftp.host}:${port}`, user: sftp.user, privateKeyFile: keyFile }))
  writeFileSync(config, JSON.stringify({ credentials }), { mode: 0o600 })
  const serverEnv: Record<string, string> = {
    APUBI_LOG_LEVEL: 'warn',
    // A failed copy is reported, not retried: a retry would be timed as if it were one copy.
    APUBI_MAX_ATTEMPTS: '1',
    APUBI_PARALLEL_FILES: String(PARALLEL_FILES),
    APUBI_CONNECTIONS_PER_HOST: String(CONNECTIONS_PER_HOST),
    APUBI_SSH_KNOWN_HOSTS: knownHosts,
    APUBI_CONFIG: config,
    APUBI_S3_ENDPOINT: s3.info.endpoint,
    AWS_ACCESS_KEY_ID: s3.info.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.info.secretAccessKey,
    AWS_REGION: s3.info.region,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  }
  const rcloneConfig = join(secrets, 'rclone.conf')
  writeFileSync(rcloneConfig, '')
  // Where the hasher overlays keep their database of digests.
  const rcloneCache = join(secrets, 'rclone-cache')
  const sums = { hashes: 'md5,sha256' }
  const rcloneEnv = rclone
    ? remotesEnv(
        [
          { name: 'ftp', type: 'ftp', options: { host: ftp.info.host, port: String(ftp.info.port), user: ftp.info.user, pass: obscure(ftp.info.password) } },
          { name: 'pure', type: 'ftp', options: { host: pureFtp.info.host, port: String(pureFtp.info.port), user: pureFtp.info.user, pass: obscure(pureFtp.info.password) } },
          // internal-sftp only: no shell to run md5sum/sha1sum in, and none to probe for.
          { name: 'sftp', type: 'sftp', options: { host: sftp.host, port: String(sftp.port), user: sftp.user, key_file: keyFile, known_hosts_file: knownHosts, shell_type: 'none' } },
          { name: 'sftp-far', type: 'sftp', options: { host: sftp.host, port: String(far.port), user: sftp.user, key_file: keyFile, known_hosts_file: knownHosts, shell_type: 'none' } },
          { name: 'sftp-far-sums', type: 'hasher', options: { remote: 'sftp-far:', ...sums } },
          {
            name: 's3',
            type: 's3',
            options: { provider: 'Other', endpoint: s3.info.endpoint, region: s3.info.region, access_key_id: s3.info.accessKeyId, secret_access_key: s3.info.secretAccessKey, force_path_style: 'true' },
          },
          {
            name: 's3-far',
            type: 's3',
            options: { provider: 'Other', endpoint: farS3Endpoint, region: s3.info.region, access_key_id: s3.info.accessKeyId, secret_access_key: s3.info.secretAccessKey, force_path_style: 'true' },
          },
          { name: 'sftp-sums', type: 'hasher', options: { remote: 'sftp:', ...sums } },
          { name: 'ftp-sums', type: 'hasher', options: { remote: 'ftp:', ...sums } },
        ],
        rcloneConfig,
        rcloneCache,
      )
    : undefined
  // An interrupted bench stops the rclone that runs.
  const stopRclone = new AbortController()
  bench.cleanups.push(async () => stopRclone.abort())

  const toSftp = (name: string, from: FtpInfo, remote: string): Route => ({
    name,
    oursFrom: (rel) => ftpUrl(from, `origin/${rel}`),
    oursTo: (who, rel) => sftp.url(`${who}/${rel}`),
    rcloneFrom: (rel) => `${remote}:origin/${rel}`,
    rcloneTo: (who, rel) => `${who === 'rclone' ? 'sftp' : 'sftp-sums'}:${sftpRoot}/${who}${rel && `/${rel}`}`,
    folder: (who) => join(sftpRoot, who),
  })
  const routes: Route[] = [
    toSftp('FTP→SFTP', ftp.info, 'ftp'),
    toSftp('FTP (pure-ftpd)→SFTP', pureFtp.info, 'pure'),
    {
      name: 'S3→FTP',
      oursFrom: (rel) => `s3://${s3.info.bucket}/origin/${rel}`,
      oursTo: (who, rel) => ftpUrl(ftp.info, `dst-${who}/${rel}`),
      rcloneFrom: (rel) => `s3:${s3.info.bucket}/origin/${rel}`,
      rcloneTo: (who, rel) => `${who === 'rclone' ? 'ftp' : 'ftp-sums'}:dst-${who}${rel && `/${rel}`}`,
      folder: (who) => join(ftpRoot, `dst-${who}`),
    },
  ]
  const data: Data[] = [
    { label: fileLabel, rel: 'big.bin', directory: false, bytes: fileBytes, expected: new Map([['big.bin', fileBytes]]) },
    { label: `${packageFiles.toLocaleString('en')} files`, rel: 'pkg', directory: true, bytes: pkgBytes, expected: under('pkg', pkg) },
  ]
  routes.push({
    ...toSftp(`FTP→SFTP ${FAR_DELAY_MS * 2} ms away`, ftp.info, 'ftp'),
    oursTo: (who, rel) => sftp.url(`${who}/${rel}`).replace(`:${sftp.port}/`, `:${far.port}/`),
    rcloneTo: (who, rel) => `${who === 'rclone' ? 'sftp-far' : 'sftp-far-sums'}:${sftpRoot}/${who}${rel && `/${rel}`}`,
    far: { roundTripS: (FAR_DELAY_MS * 2) / 1000, turns: () => far.stats.turns, destination: far, data: [{ label: `${farFiles.length} files`, rel: 'far', directory: true, bytes: farBytes, expected: under('far', farPkg) }] },
  })

  routes.push({
    name: FAR_S3_ROUTE,
    oursFrom: (rel) => `s3://${s3.info.bucket}/origin/${rel}`,
    oursTo: (who, rel) => sftp.url(`${who}/${rel}`).replace(`:${sftp.port}/`, `:${far.port}/`),
    rcloneFrom: (rel) => `s3-far:${s3.info.bucket}/origin/${rel}`,
    rcloneTo: (who, rel) => `${who === 'rclone' ? 'sftp-far' : 'sftp-far-sums'}:${sftpRoot}/${who}${rel && `/${rel}`}`,
    folder: (who) => join(sftpRoot, who),
    env: { APUBI_S3_ENDPOINT: farS3Endpoint },
    far: {
      roundTripS: (FAR_DELAY_MS * 2) / 1000,
      turns: () => far.stats.turns,
      sourceTurns: () => farS3.stats.turns,
      destination: far,
      data: [{ label: `${farFiles.length} files`, rel: 'far', directory: true, bytes: farBytes, expected: under('far', farPkg) }],
    },
  })

  const failures: string[] = []
  for (const route of routes.filter((r) => selected(r.name))) {
    for (const what of route.far?.data ?? data) {
      try {
        await scenario(route, what)
      } catch (e) {
        failures.push(`${route.name} ${what.label}: ${(e as Error).stack ?? e}`)
      }
    }
  }
  if (failures.length > 0) throw new Error(failures.join('\n\n'))

  /** One route with one piece of data: rclone with and without digests, ours with and without, in interleaved rounds, the fastest of each kept. */
  async function scenario(route: Route, what: Data): Promise<void> {
    const name = `${route.name} ${what.label}`
    const env = { ...serverEnv, ...route.env }
    const servers: Record<Contender, TestServer> = {
      ours: await bench.apubiServer(env),
      bare: await bench.apubiServer({ ...env, APUBI_CHECKSUMS: 'none' }),
    }
    // Fastest of the rounds for time; highest for rclone's peak RSS (ours is the server's VmHWM: all rounds).
    const best: Partial<Record<Contender | Peer, number>> = {}
    const rss: Partial<Record<Contender | Peer, number>> = {}
    // CPU seconds (user + system) of one copy, the fewest of the rounds: ours is the server's process
    // tree (an `ssh` child's CPU is ours), rclone's is rclone's. Holds on a shared machine, where times do not.
    const cpu: Partial<Record<Contender | Peer, number>> = {}
    // Through the far link: the fewest turns the proxy counted in one copy of each contender.
    const turns: Partial<Record<Contender | Peer, number>> = {}
    const sourceTurns: Partial<Record<Contender | Peer, number>> = {}
    // The most connections open at once to the far destination in a copy: our lanes at their peak.
    const peak: Partial<Record<Contender | Peer, number>> = {}
    // How long connections were open to the far destination in a copy, summed: the fewest of the rounds.
    const laneSeconds: Partial<Record<Contender | Peer, number>> = {}
    try {
      // Each contender's copy into its folder; resolves with what it took, for the log.
      const copies = new Map<Contender | Peer, (folder: string) => Promise<string>>()
      for (const who of ['rclone', 'rclone-sums'] as const) {
        if (!rcloneEnv) break
        copies.set(who, async (folder) => {
          // ftp-srv answers 451, not 550, for a folder that is not there, which rclone takes for a failure;
          // made writable for vsftpd's anonymous user.
          if (route.name === 'S3→FTP' && what.directory) {
            mkdirSync(join(folder, what.rel))
            chmodSync(join(folder, what.rel), 0o777)
          }
          rmSync(rcloneCache, { recursive: true, force: true })
          const run = await rcloneCopy(rcloneEnv, route.rcloneFrom(what.rel), route.rcloneTo(who, what.directory ? what.rel : ''), RCLONE_FLAGS, stopRclone.signal)
          best[who] = Math.min(best[who] ?? Infinity, run.seconds)
          rss[who] = Math.max(rss[who] ?? 0, run.peakRssMb)
          cpu[who] = Math.min(cpu[who] ?? Infinity, run.cpuSeconds)
          return `${LABELS[who]} ${run.seconds.toFixed(2)} s, ${run.cpuSeconds.toFixed(2)} s CPU (${run.peakRssMb.toFixed(0)} MB)`
        })
      }
      for (const who of ['ours', 'bare'] as const) {
        copies.set(who, async () => {
          // Generous, so a slow server is measured rather than cut off; a stuck one still ends the bench.
          const timeoutMs = Math.max(120_000, best.rclone !== undefined ? best.rclone * 20_000 : what.bytes / 1e3)
          const source = route.oursFrom(what.directory ? `${what.rel}/` : what.rel)
          const destination = route.oursTo(who, what.directory ? `${what.rel}/` : what.rel)
          const pid = servers[who].process.pid!
          const cpuBefore = treeCpuSeconds(pid)
          const seconds = await publish(servers[who], source, destination, timeoutMs)
          const cpuSeconds = treeCpuSeconds(pid) - cpuBefore
          best[who] = Math.min(best[who] ?? Infinity, seconds)
          cpu[who] = Math.min(cpu[who] ?? Infinity, cpuSeconds)
          return `${LABELS[who]} ${seconds.toFixed(2)} s, ${cpuSeconds.toFixed(2)} s CPU`
        })
      }
      // Each of ours against its peer, the two alone and in turn, who goes first alternating by round:
      // rotated among all four (the hashing ones too), ours without digests came out up to 1.7 times
      // slower right after another contender than alone, which rclone did not (docs/performance.md).
      const pairs = (['bare', 'ours'] as const).map((who) => [who, PEER_OF[who]] as const)
      for (let round = 1; round <= rounds; round++) {
        const order = pairs.flatMap((pair) => (round % 2 === 1 ? [...pair] : [...pair].reverse())).flatMap((who) => {
          const copy = copies.get(who)
          return copy ? [[who, copy] as const] : []
        })
        log(`${name}, round ${round}/${rounds}: ${order.map(([who]) => LABELS[who]).join(', then ')}`)
        const took: string[] = []
        for (const [who, copy] of order) {
          const folder = route.folder(who)
          emptyFolder(folder)
          const turnsBefore = route.far?.turns() ?? 0
          if (route.far) route.far.destination.stats.peak = route.far.destination.stats.open
          const sourceTurnsBefore = route.far?.sourceTurns?.() ?? 0
          const laneSecondsBefore = route.far?.destination.connectionSeconds() ?? 0
          took.push(await copy(folder))
          if (route.far) laneSeconds[who] = Math.min(laneSeconds[who] ?? Infinity, route.far.destination.connectionSeconds() - laneSecondsBefore)
          if (route.far) turns[who] = Math.min(turns[who] ?? Infinity, route.far.turns() - turnsBefore)
          if (route.far) peak[who] = Math.max(peak[who] ?? 0, route.far.destination.stats.peak)
          if (route.far?.sourceTurns) sourceTurns[who] = Math.min(sourceTurns[who] ?? Infinity, route.far.sourceTurns() - sourceTurnsBefore)
          await verifyCopy(folder, what.expected)
          emptyFolder(folder)
        }
        log(`  ${took.join(', ')}`)
      }
    } finally {
      for (const who of ['ours', 'bare'] as const) {
        if (best[who] !== undefined) rss[who] = peakRssMb(servers[who].process.pid!)
        await servers[who].stop()
      }
      const missing = rclone ? '' : ' (rclone not installed)'
      const faster = rclone ? { met: (_: number, ratio: number) => ratio <= 1 } : {}
      const small = { met: (mb: number) => mb <= RSS_TARGET_MB }
      const digests = { ours: 'MD5+SHA-256', bare: 'no digests' }
      for (const who of ['ours', 'bare'] as const) {
        const peer = PEER_OF[who]
        bench.rows.push(
          { metric: `${name} s, ${digests[who]}, vs ${LABELS[peer]}${missing}`, ours: best[who], reference: best[peer], digits: 2, target: '≤ 100 %', ...faster },
          { metric: `peak RSS MB, ${name}, ${digests[who]}, vs ${LABELS[peer]}`, ours: rss[who], reference: rss[peer], digits: 0, target: `≤ ${RSS_TARGET_MB} MB`, ...small },
          { metric: `CPU s (user + system), ${name}, ${digests[who]}, vs ${LABELS[peer]}`, ours: cpu[who], reference: cpu[peer], digits: 2, target: '' },
        )
      }
      // For information: our default copy beside plain rclone, which computes no digest.
      if (rclone) bench.rows.push({ metric: `${name} s, MD5+SHA-256, vs ${LABELS.rclone} (no digests)`, ours: best.ours, reference: best.rclone, digits: 2, target: '' })
      if (route.far) {
        // Round trips per file per lane, from the time: each of the lanes waits one round trip at a
        // time, so a latency-bound copy takes files × round trips ÷ lanes round trip times; with lanes
        // that grow, the lanes' time is the connections' time summed (logins and idle ones included).
        const files = what.expected.size
        const perFile = (laneSecondsOf: number | undefined) => (laneSecondsOf === undefined ? undefined : laneSecondsOf / (files * route.far!.roundTripS))
        const atFourLanes = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * PARALLEL_FILES)
        const counted = (n: number | undefined) => (n === undefined ? undefined : n / files)
        bench.rows.push(
          { metric: `${name}: connections at once to the destination at the peak, no digests, vs ${LABELS.rclone}`, ours: peak.bare, reference: peak.rclone, digits: 0, target: '' },
          { metric: `${name}: round trips per file per lane from the time (at ${PARALLEL_FILES} lanes), no digests, vs ${LABELS.rclone}`, ours: perFile(atFourLanes(best.bare)), reference: perFile(atFourLanes(best.rclone)), digits: 1, target: '' },
          { metric: `${name}: the same over the time each connection to the destination was open, no digests, vs ${LABELS.rclone}`, ours: perFile(laneSeconds.bare), reference: perFile(laneSeconds.rclone), digits: 1, target: '≤ 2', met: (n) => n <= 2 },
          { metric: `${name}: round trips per file counted at the ${route.far.sourceTurns ? "destination's " : ''}proxy, no digests, vs ${LABELS.rclone}`, ours: counted(turns.bare), reference: counted(turns.rclone), digits: 1, target: '≤ 2', met: (n) => n <= 2 },
          ...(route.far.sourceTurns
            ? [{ metric: `${name}: round trips per file counted at the source's proxy, no digests, vs ${LABELS.rclone}`, ours: counted(sourceTurns.bare), reference: counted(sourceTurns.rclone), digits: 1, target: '' }]
            : []),
          { metric: `${name} s, no digests, vs ${LABELS.rclone}: the far target`, ours: best.bare, reference: best.rclone, digits: 2, target: '≤ 40 %', ...(rclone && { met: (_: number, ratio: number) => ratio <= 0.4 }) },
        )
      }
    }
  }
}

/**
 * Ours, as the WFM sees it: from sending LoadAsset until GetTaskStatus, polled every 50 ms, says SUCCESS.
 * @returns seconds
 * @throws when the task ends FAILED or still runs after `timeoutMs`, with the end of the server's output
 */
async function publish(server: TestServer, source: string, destination: string, timeoutMs: number): Promise<number> {
  const client = new ApubiClient(server.url)
  const started = performance.now()
  const taskId = await client.loadAsset(source, destination)
  for (;;) {
    const { status } = await client.getTaskStatus(taskId)
    if (status === 'SUCCESS') return (performance.now() - started) / 1000
    const failed = status === 'FAILED' ? 'ended FAILED' : performance.now() - started > timeoutMs ? `still runs after ${timeoutMs} ms` : undefined
    if (failed) throw new Error(`task ${taskId} (${source} → ${destination.replace(/\/\/[^@/]*@/, '//')}) ${failed}; server output:\n${server.output().slice(-4000)}`)
    await sleep(POLL_MS)
  }
}

/** Puts the files `rels` of `dir` into the bucket under `origin/`: 8 at once, the large ones in 16 MiB parts. */
async function uploadToS3(s3: S3Info, dir: string, rels: readonly string[]): Promise<void> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true'
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    // s3rver knows no flexible checksums, as our backend's client (src/backends/s3/index.ts) assumes too.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const PART = 16 << 20
  try {
    let next = 0
    const lane = async (): Promise<void> => {
      for (let rel = rels[next++]; rel !== undefined; rel = rels[next++]) {
        const path = join(dir, rel)
        const key = `origin/${rel}`
        const bytes = statSync(path).size
        if (bytes <= PART) await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: readFileSync(path) }))
        else await new Upload({ client, params: { Bucket: s3.bucket, Key: key, Body: createReadStream(path) }, partSize: PART, queueSize: 4 }).done()
      }
    }
    await Promise.all(Array.from({ length: 8 }, lane))
  } finally {
    client.destroy()
  }
}

/** Empties a destination folder but keeps it: vsftpd's anonymous user may not make it again at its root. */
function emptyFolder(folder: string): void {
  for (const entry of existsSync(folder) ? readdirSync(folder) : []) rmSync(join(folder, entry), { recursive: true, force: true })
}
