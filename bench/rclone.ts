// rclone (Debian package `rclone`) as the peer of the transport bench: remotes from environment
// variables only, one `rclone copy` timed from spawn to exit, its peak RSS sampled while it runs.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { reapedChildrenCpuSeconds } from './child.js'

const RCLONE = 'rclone'
const SAMPLE_MS = 50

/** A remote as rclone's RCLONE_CONFIG_<NAME>_<OPTION> variables give it: option names as in `rclone help backend <type>`. */
export interface Remote {
  readonly name: string
  readonly type: 'ftp' | 'sftp' | 's3' | 'hasher'
  readonly options: Readonly<Record<string, string>>
}

export interface RcloneRun {
  readonly seconds: number
  /** VmHWM sampled every 50 ms, in MB of 10^6 bytes: the peak to within the last sample. */
  readonly peakRssMb: number
  /** CPU seconds, user + system, of rclone and of what it ran. */
  readonly cpuSeconds: number
}

/** `rclone version`, first line; undefined when rclone is not installed. */
export function rcloneVersion(): string | undefined {
  const result = spawnSync(RCLONE, ['version'], { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.split('\n')[0]!.trim() : undefined
}

/** A password as rclone's config wants it (`rclone obscure`: reversible, not a secret). */
export function obscure(password: string): string {
  const result = spawnSync(RCLONE, ['obscure', '-'], { input: password, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`rclone obscure failed: ${result.stderr}`)
  return result.stdout.trim()
}

/** The environment that defines `remotes`, with `configFile` as rclone's (empty) config file and `cacheDir` as its cache (a hasher's database). */
export function remotesEnv(remotes: readonly Remote[], configFile: string, cacheDir: string): Record<string, string> {
  const env: Record<string, string> = { RCLONE_CONFIG: configFile, RCLONE_CACHE_DIR: cacheDir }
  for (const { name, type, options } of remotes) {
    const prefix = `RCLONE_CONFIG_${name.toUpperCase()}_`
    env[`${prefix}TYPE`] = type
    for (const [option, value] of Object.entries(options)) env[`${prefix}${option.toUpperCase()}`] = value
  }
  return env
}

/**
 * `rclone copy <source> <destination> <flags…>`, timed from spawn to exit (start-up included, as our
 * side's includes a SOAP round trip).
 * @throws when rclone exits non-zero, with the tail of what it printed
 */
export async function rcloneCopy(env: Record<string, string>, source: string, destination: string, flags: readonly string[], signal?: AbortSignal): Promise<RcloneRun> {
  const args = ['copy', source, destination, ...flags]
  // Our children's times grow only when one is reaped: while rclone runs, no other child of the bench ends.
  const cpuBefore = reapedChildrenCpuSeconds()
  const started = performance.now()
  // rclone 1.60's s3 backend refuses to start with AWS_CA_BUNDLE set ("LoadCustomCABundleError: …
  // unsupported transport"); the bench's endpoints are plain HTTP on loopback, and need no CA.
  const { AWS_CA_BUNDLE: _, ...inherited } = process.env
  const child = spawn(RCLONE, args, { env: { ...inherited, ...env }, stdio: ['ignore', 'ignore', 'pipe'], ...(signal && { signal }) })
  let log = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-8000)))
  let peakKib = 0
  const sample = () => {
    try {
      const kib = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]
      if (kib !== undefined) peakKib = Math.max(peakKib, Number(kib))
    } catch {
      // It exited meanwhile.
    }
  }
  const sampler = setInterval(sample, SAMPLE_MS)
  const [code, signalName] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (c, s) => resolve([c, s]))
  }).finally(() => clearInterval(sampler))
  const seconds = (performance.now() - started) / 1000
  const cpuSeconds = reapedChildrenCpuSeconds() - cpuBefore
  // Exit status only: against ftp-srv rclone logs "ERROR : …: SetModTime is not supported" for every
  // file it uploads and still copies them all (exit 0). The caller checks the copy on disk.
  if (code !== 0) {
    throw new Error(`rclone ${args.join(' ')} ended ${signalName ?? `with ${code}`}:\n${log.slice(-4000)}`)
  }
  return { seconds, peakRssMb: (peakKib * 1024) / 1e6, cpuSeconds }
}
