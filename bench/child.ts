import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
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

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ): 100 on Linux everywhere in practice. */
const TICKS_PER_SECOND = 100

/**
 * CPU seconds (user + system) used so far by a process and its descendants: theirs while they run,
 * and, through the reaped children's times (cutime, cstime), theirs once they ended. So an `ssh`
 * child's CPU counts as its parent's, whether it still runs or not. The difference of two readings
 * is what the tree used in between.
 */
export function treeCpuSeconds(pid: number): number {
  const children = new Map<number, number[]>()
  const ticks = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue // ended meanwhile
    }
    // After the command name, which may hold spaces and parentheses: state, ppid, … utime is field 14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const parent = Number(fields[1])
    children.set(parent, [...(children.get(parent) ?? []), Number(name)])
    ticks.set(Number(name), Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]))
  }
  let total = 0
  for (const queue = [pid]; queue.length > 0; ) {
    const next = queue.pop()!
    total += ticks.get(next) ?? 0
    queue.push(...(children.get(next) ?? []))
  }
  return total / TICKS_PER_SECOND
}

/** CPU seconds (user + system) of this process's children reaped so far: read before and after one exits. */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND
}
