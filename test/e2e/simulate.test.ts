// `apubi simulate` against our server: the requests, faults and tasks it reports are the ones the
// server counted in its own /metrics.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import type { SimulationReport } from '../../src/conformance/index.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { startSoapPackageServer } from '../servers/non-conforming.js'

const entry = new URL('../../src/cli/index.ts', import.meta.url).pathname

async function simulate(url: string, args: string[]): Promise<{ code: number; report: SimulationReport; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['--import', 'tsx', entry, 'simulate', url, ...args], (error, stdout, stderr) => {
      assert.equal(error, null, `${stdout}\n${stderr}`)
      resolve({ code: 0, report: JSON.parse(stdout) as SimulationReport, stderr })
    }),
  )
}

/** `apubi_soap_request_duration_seconds_count` by `operation/outcome`, from the server's /metrics. */
async function soapCounts(server: TestServer): Promise<Map<string, number>> {
  const text = await (await fetch(new URL('/metrics', server.url))).text()
  const counts = new Map<string, number>()
  for (const m of text.matchAll(/^apubi_soap_request_duration_seconds_count\{operation="(\w+)",outcome="(\w+)"\} (\d+)$/gm)) counts.set(`${m[1]}/${m[2]}`, Number(m[3]))
  return counts
}

/** What the server counted between two scrapes. */
function counted(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...after].map(([key, n]) => [key, n - (before.get(key) ?? 0)]).filter(([, n]) => n !== 0))
}

describe('apubi simulate against our server', () => {
  let server: TestServer
  before(async () => {
    server = await startServer()
    writeFileSync(join(server.fileRoot, 'clip.ts'), 'clip bytes')
  })
  after(() => server.stop())

  it('publishes and purges N tasks, N at a time; its counts are the server\'s', async () => {
    const before = await soapCounts(server)
    const { report, stderr } = await simulate(server.url, [
      ...['--source', pathToFileURL(join(server.fileRoot, 'clip.ts')).href, '--destination', 'sim/{n}/clip.ts'],
      ...['--concurrency', '4', '--count', '12', '--interval', '50', '--purge', '--progress'],
    ])
    const after = await soapCounts(server)
    assert.deepEqual(report.tasks, { started: 12, succeeded: 12, failed: 0, refused: 0, lost: 0, unfinished: 0 })
    assert.deepEqual(report.purges, { started: 12, succeeded: 12, failed: 0 })
    const ops = report.operations
    assert.deepEqual(counted(before, after), { 'LoadAsset/ok': ops.LoadAsset!.ok, 'PurgeAsset/ok': ops.PurgeAsset!.ok, 'GetTaskStatus/ok': ops.GetTaskStatus!.ok })
    assert.equal(ops.LoadAsset!.requests, 12)
    assert.equal(ops.PurgeAsset!.requests, 12)
    assert.ok(ops.GetTaskStatus!.ok >= 24, 'each load and each purge polled at least once')
    assert.equal(report.requests.total, 24 + ops.GetTaskStatus!.requests)
    assert.equal(report.loadToSuccessMs.count, 12)
    assert.ok(report.loadToSuccessMs.p50 <= report.loadToSuccessMs.max && report.loadToSuccessMs.p50 > 0)
    assert.equal(ops.GetTaskStatus!.latencyMs.count, ops.GetTaskStatus!.requests)
    assert.deepEqual([report.faults, report.httpErrors, report.networkErrors], [{}, {}, {}])
    assert.match(stderr, /tasks 12 started, 12 SUCCESS, 0 FAILED {2}0 faults, 0 HTTP errors, 0 without answer/)
  })

  it('with --task-ids, only GetTaskStatus: unknown ids are faults, counted as the server counts them', async () => {
    writeFileSync(join(server.fileRoot, 'ids.txt'), 'no-such-task-1\nno-such-task-2\n')
    const before = await soapCounts(server)
    const { report } = await simulate(server.url, ['--task-ids', `@${join(server.fileRoot, 'ids.txt')}`, '--concurrency', '3', '--count', '10', '--interval', '10', '--no-progress'])
    const after = await soapCounts(server)
    assert.equal(report.mode, 'status')
    assert.deepEqual(report.operations.GetTaskStatus && [report.operations.GetTaskStatus.requests, report.operations.GetTaskStatus.faults], [10, 10])
    assert.deepEqual(counted(before, after), { 'GetTaskStatus/ERR_TASK_NOT_FOUND': 10 })
    assert.deepEqual(report.faults, { 'soapenv:Server Task Id does not exist': 10 })
    assert.equal(report.tasks.started, 0)
  })

  it('a mistake on the command line exits 2', async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', entry, 'simulate', server.url, '--source', 'file:///x.ts'], (error, _stdout, stderr) => resolve({ code: Number(error?.code ?? 0), stderr })),
    )
    assert.equal(result.code, 2)
    assert.match(result.stderr, /give --source and --destination, or --task-ids/)
  })
})

it('apubi simulate works against another vendor\'s server (npm soap, from our WSDL): its faults with HTTP 200 are still faults', async () => {
  const vendor = await startSoapPackageServer()
  try {
    const published = (await simulate(vendor.url, ['--source', 'ftp://u:p@cis.invalid/a.ts', '--destination', 'v/{n}.ts', '--concurrency', '2', '--count', '4', '--interval', '20', '--no-progress'])).report
    assert.deepEqual([published.tasks.started, published.tasks.succeeded], [4, 4])
    assert.deepEqual([published.operations.LoadAsset?.ok, published.operations.GetTaskStatus?.ok], [4, 4])
    const polled = (await simulate(vendor.url, ['--task-ids', 'unknown', '--count', '3', '--interval', '1', '--no-progress'])).report
    assert.deepEqual(polled.faults, { 'soap:Server Task Id does not exist': 3 })
    assert.deepEqual(polled.httpErrors, {})
  } finally {
    await vendor.close()
  }
})
