// CPU time per GetTaskStatus answer, ours (compiled, at its defaults) against bare node:http answering
// the same bytes, under wrk -t1 -c64: user + system time of each server process over a run, divided
// by the requests answered. Unlike requests per second, this holds on a machine other work shares.
// Run after `npm run build`: `npx tsx bench/soap-cpu.ts [seconds, default 5] [rounds, default 2]`.
import { readFileSync } from 'node:fs'
import { startServer } from '../test/servers/apubi-server.js'
import { startChild, treeCpuSeconds } from './child.js'
import { createFinishedTask, fetchAnswer, getTaskStatusEnvelope } from './soap-load.js'
import { wrkGetTaskStatus } from './wrk-load.js'

const seconds = Number(process.argv[2] ?? 5)
const rounds = Number(process.argv[3] ?? 2)

async function measure(pid: number, url: string, body: string) {
  const before = treeCpuSeconds(pid)
  const startedAt = performance.now()
  const result = await wrkGetTaskStatus(url, body, seconds)
  const cpu = treeCpuSeconds(pid) - before
  // wrk's warm-up is part of the CPU measured: count its requests from the rate over the whole time.
  const requests = result.requestsPerSecond * ((performance.now() - startedAt) / 1000)
  return { ...result, cpuUs: (cpu / requests) * 1e6 }
}

// At its defaults but for the store's poll, as in the bench (a LoadAsset wakes the worker at once).
const server = await startServer({ built: true, env: { APUBI_POLL_MS: '500' } })
server.process.stdout?.removeAllListeners('data').resume()
const taskId = await createFinishedTask(server)
const body = getTaskStatusEnvelope(taskId)
const answer = await fetchAnswer(server.url, body)
const bare = await startChild<{ port: number }>('./bare-server.ts', [answer.bytes.toString('base64')])
const bareUrl = `http://127.0.0.1:${bare.info.port}/apubi`
if (!(await fetchAnswer(bareUrl, body)).bytes.equals(answer.bytes)) throw new Error('the bare server answers other bytes')
const fmt = (r: { requestsPerSecond: number; p99Ms: number; cpuUs: number }) =>
  `${Math.round(r.requestsPerSecond)} req/s, p99 ${r.p99Ms.toFixed(1)} ms, ${r.cpuUs.toFixed(1)} µs CPU/req`
try {
  for (let round = 1; round <= rounds; round++) {
    const reference = await measure(bare.pid, bareUrl, body)
    const ours = await measure(server.process.pid!, server.url, body)
    console.log(`round ${round}: bare ${fmt(reference)} | ours ${fmt(ours)} | req/s ${(ours.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}×, CPU/req bare/ours ${(reference.cpuUs / ours.cpuUs).toFixed(2)}× | load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`)
  }
} finally {
  await bare.stop()
  await server.stop()
}
