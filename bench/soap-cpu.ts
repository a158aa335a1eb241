// CPU time per GetTaskStatus answer, ours (compiled, at its defaults) against bare node:http answering
// the same bytes, under wrk -t1 -c64: user + system time of each server process over one-second runs
// taken in turn, divided by the requests answered. Unlike requests per second, this holds on a machine
// other work shares. Run after `npm run build`: `npx tsx bench/soap-cpu.ts [runs of each, default 30]`.
import { readFileSync } from 'node:fs'
import { startServer } from '../test/servers/apubi-server.js'
import { startChild } from './child.js'
import { createFinishedTask, fetchAnswer, getTaskStatusEnvelope } from './soap-load.js'
import { wrkInterleaved, type WrkResult } from './wrk-load.js'

const runs = Number(process.argv[2] ?? 30)

// At its defaults but for the store's poll, as in the bench (a LoadAsset wakes the worker at once).
const server = await startServer({ built: true, env: { APUBI_POLL_MS: '500' } })
server.process.stdout?.removeAllListeners('data').resume()
const taskId = await createFinishedTask(server)
const body = getTaskStatusEnvelope(taskId)
const answer = await fetchAnswer(server.url, body)
const bare = await startChild<{ port: number }>('./bare-server.ts', [answer.bytes.toString('base64')])
const bareUrl = `http://127.0.0.1:${bare.info.port}/apubi`
if (!(await fetchAnswer(bareUrl, body)).bytes.equals(answer.bytes)) throw new Error('the bare server answers other bytes')
const fmt = (r: WrkResult) => `${Math.round(r.requestsPerSecond)} req/s, ${r.cpuUsPerRequest!.toFixed(1)} µs CPU/req`
try {
  const { ours, reference, sliceRatios } = await wrkInterleaved({ url: bareUrl, pid: bare.pid }, { url: server.url, pid: server.process.pid! }, body, runs)
  const percent = (ratio: number) => `${Math.round(100 * ratio)} %`
  console.log(`bare ${fmt(reference)} | ours ${fmt(ours)} | CPU/req bare ÷ ours ${(reference.cpuUsPerRequest! / ours.cpuUsPerRequest!).toFixed(2)}, req/s ours ÷ bare ${percent(ours.requestsPerSecond / reference.requestsPerSecond)} (one-second runs ${percent(sliceRatios[0]!)}–${percent(sliceRatios.at(-1)!)}) | load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`)
} finally {
  await bare.stop()
  await server.stop()
}
