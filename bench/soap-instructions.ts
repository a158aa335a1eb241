// Instructions per GetTaskStatus answer, ours (compiled, at its defaults) against bare node:http
// answering the same bytes, each server under valgrind's callgrind: a count the machine's load does
// not change, unlike time or even CPU time (cache misses and context switches grow with the load).
// Both servers run warmed (JIT) before counting starts; the client runs outside valgrind.
// Run after `npm run build`: `npx tsx bench/soap-instructions.ts [requests counted, default 6000]`.
// Under valgrind a run takes a few minutes. To see where the instructions go: BENCH_PROFILE=1 keeps
// callgrind's files (their folder is printed) and runs ours with --perf-basic-prof, whose
// /tmp/perf-<pid>.map names the JIT-compiled functions callgrind lists as addresses.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from '../test/servers/apubi-server.js'
import { createFinishedTask, fetchAnswer, getTaskStatusEnvelope } from './soap-load.js'

const counted = Number(process.argv[2] ?? 6_000)
const profile = process.env['BENCH_PROFILE'] === '1'
const WARMUP_REQUESTS = 15_000
const CONNECTIONS = 8
const STARTUP_MS = 300_000

const dir = mkdtempSync(join(tmpdir(), 'apubi-callgrind-'))
/** valgrind's arguments, before the program's, for the server named `name`. */
const valgrind = (name: string) => ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${join(dir, name)}.%p`]

/** Sends `n` GetTaskStatus requests over `CONNECTIONS` keep-alive connections; rejects on any non-200. */
async function send(url: string, body: string, n: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS })
  let left = n
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        res.resume().once('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))))
      })
      req.once('error', reject).end(body)
    })
  const lane = async () => {
    while (left-- > 0) await one()
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, lane))
  agent.destroy()
}

/**
 * Instructions (Ir) callgrind counted in the process while `work` ran: on its main thread, and on all
 * its threads (V8's compiler and garbage collector helpers too, which vary more from run to run).
 */
async function countWhile(pid: number, work: () => Promise<void>): Promise<{ main: number; all: number }> {
  execFileSync('callgrind_control', ['--instr=on', String(pid)], { stdio: 'ignore' })
  await work()
  execFileSync('callgrind_control', ['--dump', String(pid)], { stdio: 'ignore' })
  // One file per thread and dump: <name>.<pid>.<dump>-<thread>, the main thread first (-01).
  const counts = { main: 0, all: 0 }
  for (const file of readdirSync(dir).filter((f) => f.includes(`.${pid}.`))) {
    const instructions = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, file), 'utf8'))?.[1] ?? 0)
    counts.all += instructions
    if (file.endsWith('-01')) counts.main += instructions
  }
  return counts
}

async function waitForAnswer(url: string, child: ChildProcess): Promise<void> {
  const until = Date.now() + STARTUP_MS
  while (!(await fetch(`${url}?wsdl`).then((r) => r.status < 500, () => false))) {
    if (child.exitCode !== null) throw new Error('the server exited at start')
    if (Date.now() > until) throw new Error(`no answer within ${STARTUP_MS} ms`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

const builtEntry = new URL('../dist/cli/index.js', import.meta.url).pathname
const server = await startServer({ built: true, started: true, env: { APUBI_POLL_MS: '500' }, command: ['valgrind', ...valgrind('ours'), process.execPath, ...(profile ? ['--perf-basic-prof'] : []), builtEntry, 'serve'] })
const results: string[] = []
try {
  server.process.stdout?.removeAllListeners('data').resume()
  await waitForAnswer(server.url, server.process)
  const taskId = await createFinishedTask(server)
  const body = getTaskStatusEnvelope(taskId)
  const answer = await fetchAnswer(server.url, body)

  const barePort = server.port + 1
  const bareCode = `const b = Buffer.from(${JSON.stringify(answer.bytes.toString('base64'))}, 'base64'); const h = { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': b.length };
    require('node:http').createServer((q, s) => s.writeHead(200, h).end(b)).listen(${barePort}, '127.0.0.1')`
  const bare = spawn('valgrind', [...valgrind('bare'), process.execPath, '-e', bareCode], { stdio: 'ignore' })
  const bareUrl = `http://127.0.0.1:${barePort}/apubi`
  try {
    await waitForAnswer(bareUrl, bare)
    if (!(await fetchAnswer(bareUrl, body)).bytes.equals(answer.bytes)) throw new Error('the bare server answers other bytes')
    for (const [name, pid, url] of [['bare node:http', bare.pid!, bareUrl], ['ours', server.process.pid!, server.url]] as const) {
      await send(url, body, WARMUP_REQUESTS)
      const { main, all } = await countWhile(pid, () => send(url, body, counted))
      const perRequest = (n: number) => Math.round(n / counted).toLocaleString('en')
      results.push(`${name}: ${perRequest(main)} instructions per GetTaskStatus on the main thread, ${perRequest(all)} on all threads`)
    }
  } finally {
    bare.kill('SIGTERM')
  }
} finally {
  await server.stop()
  if (profile) console.log(`callgrind's files: ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
}
console.log(results.join('\n'))
