import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestServer {
  /** http://127.0.0.1:<port>/apubi (https:// when the env sets APUBI_TLS_CERT) */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** A temporary folder that file:// sources may read. */
  readonly fileRoot: string
  readonly process: ChildProcess
  /** Everything the server printed so far. */
  output(): string
  /** SIGTERM, and waits for the exit. Temporary folders are removed unless `keep`. */
  stop(options?: { keep?: boolean }): Promise<number | null>
  /** Resolves with the exit code once the process has ended on its own or been stopped. */
  exited: Promise<number | null>
  /** SIGKILL: a crash. Folders are kept, for a restart on the same data. */
  kill(): Promise<void>
}

export interface StartOptions {
  readonly env?: Record<string, string>
  /** Reuse the data and file folders of an earlier (killed) server. */
  readonly dataDir?: string
  readonly fileRoot?: string
  /** Run the compiled server (dist/, as `npm start` does) rather than the sources through tsx. */
  readonly built?: boolean
  /** Return once the process runs, without waiting for the WSDL (a server that waits or fails at start). */
  readonly started?: boolean
  /** Run this command instead (an installed `apubi serve`), in the server's own temporary folder. */
  readonly command?: readonly [string, ...string[]]
}

const entry = new URL('../../src/cli/index.ts', import.meta.url).pathname
const builtEntry = new URL('../../dist/cli/index.js', import.meta.url).pathname
/** node's flags for the server, as `npm start` and the `apubi` command give them (test/unit/node-flags.test.ts). */
export const SERVER_NODE_FLAGS = ['--no-memory-reducer']

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

/** Starts `apubi serve` as a child process (TypeScript through tsx) and waits until the WSDL answers. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const port = await freePort()
  const base = options.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'apubi-test-'))
  const dataDir = options.dataDir ?? join(base!, 'data')
  const fileRoot = options.fileRoot ?? join(base!, 'files')
  mkdirSync(fileRoot, { recursive: true })
  const [program, ...args] = options.command ?? [process.execPath, ...SERVER_NODE_FLAGS, ...(options.built ? [builtEntry, 'serve'] : ['--import', 'tsx', entry, 'serve'])]
  const child = spawn(program, args, {
    ...(options.command && { cwd: base ?? dataDir }),
    env: {
      ...process.env,
      APUBI_PORT: String(port),
      APUBI_HOST: '127.0.0.1',
      APUBI_DATA_DIR: dataDir,
      APUBI_FILE_ROOTS: `${fileRoot}:${dataDir}`,
      APUBI_POLL_MS: '50',
      APUBI_RETRY_BASE_MS: '100',
      APUBI_LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  // Over HTTPS the probe would have to trust the test's CA: the log line says it listens instead.
  const secure = options.env?.APUBI_TLS_CERT !== undefined
  const url = `${secure ? 'https' : 'http'}://127.0.0.1:${port}/apubi`
  for (let i = 0; !options.started; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited at start:\n${output}`)
    const ok = secure ? output.includes('"msg":"apubi-server listening"') : await fetch(`${url}?wsdl`).then((r) => r.ok, () => false)
    if (ok) break
    if (i > 300) throw new Error(`server did not answer within 30 s:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    port,
    dataDir,
    fileRoot,
    process: child,
    output: () => output,
    exited,
    async stop({ keep = false } = {}) {
      if (child.exitCode === null) child.kill('SIGTERM')
      const code = await exited
      if (base && !keep) rmSync(base, { recursive: true, force: true })
      return code
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}
