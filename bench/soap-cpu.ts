// CPU time per GetTaskStatus answer, ours (compiled, at its defaults) against bare node:http answering
// the same bytes, under wrk -t1 -c64: user + system time of each server process over a run, divided
// by the requests answered. Unlike requests per second, this holds on a machine other work shares.
// Run after `npm run build`: `npx tsx bench/soap-cpu.ts [seconds, default 5] [rounds, default 2]`.
import { readFileSync } from 'node:fs'
import { startServer } from '../test/servers/apubi-server.js'
import { startChild } from './child.js'
import { createFinishedTask, fetchAnswer, getTaskStatusEnvelope } from './soap-load.js'
import { wrkGetTaskStatus, type WrkResult } from './wrk-load.js'

const seconds = Number(process.argv[2] ?? 5)
const rounds = Number(process.argv[3] ?? 2)

// At its defaults but for the store's poll, as in the bench (a LoadAsset wakes the worker at once).
const server = await startServer({ built: true, env: { APUBI_POLL_MS: '500' } })
server.process.stdout?.removeAllListeners('data').resume()
const taskId = await createFinishedTask(server)
const body = getTaskStatusEnvelope(taskId)
const answer = await fetchAnswer(server.url, body)
const bare = await startChild<{ port: number }>('./bare-server.ts', [answer.bytes.toString('base64')])
const bareUrl = `http://127.0.0.1:${bare.info.port}/apubi`
if (!(await fetchAnswer(bareUrl, body)).bytes.equals(answer.bytes)) throw new Error('the bare server answers other bytes')
const fmt = (r: WrkResult) =>
  `${Math.round(r.requestsPerSecond)} req/s, p99 ${r.p99Ms.toFixed(1)} ms, ${r.cpuUsPerRequest!.toFixed(1)} µs CPU/req`
try {
  for (let round = 1; round <= rounds; round++) {
    const reference = await wrkGetTaskStatus(bareUrl, body, seconds, { pid: bare.pid })
    const ours = await wrkGetTaskStatus(server.url, body, seconds, { pid: server.process.pid! })
    console.log(`round ${round}: bare ${fmt(reference)} | ours ${fmt(ours)} | req/s ${(ours.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}×, CPU/req bare/ours ${(reference.cpuUsPerRequest! / ours.cpuUsPerRequest!).toFixed(2)}× | load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`)
  }
} finally {
  await bare.stop()
  await server.stop()
}
