import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

export interface Child<T> {
  /** What the script printed as its first line, parsed as JSON. */
  readonly info: T
  readonly pid: number
  stop(): Promise<void>
}

const STARTUP_MS = 30_000

/**
 * Runs a script of bench/ in a node process of its own, so it never shares an event loop or a heap
 * with the process that measures. The script prints one JSON line once ready, and exits when its
 * stdin closes: then it also goes away if the bench itself is killed.
 */
export async function startChild<T>(script: string, args: readonly string[] = []): Promise<Child<T>> {
  const path = new URL(script, import.meta.url).pathname
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} not ready within ${STARTUP_MS} ms`)), STARTUP_MS)
      createInterface({ input: child.stdout }).once('line', (l) => (clearTimeout(timer), resolve(l)))
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${script} exited (${code}) before it was ready`))))
    })
    return { info: JSON.parse(line) as T, pid: child.pid!, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * The peak resident set of a process so far (VmHWM), in MB of 10^6 bytes. Read from a child, it is
 * that child's own peak, untouched by the bench's memory.
 */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1]
  if (kib === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return (Number(kib) * 1024) / 1e6
}

/** For the child scripts: exit once the parent closes our stdin (or dies). */
export function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(0)).resume()
}
