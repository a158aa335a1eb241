// What the server logs per SOAP request at the default level (info) and at debug. The WFM polls every
// task every few seconds: at info, the log holds LoadAsset, PurgeAsset and each task's state changes,
// not a line per poll; at debug, the polls too.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient, ApubiFault } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { eventually } from './helpers.js'

type Line = Record<string, unknown>

function logLines(server: TestServer): Line[] {
  return server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line)
}

/** A LoadAsset polled to its end, a poll of an unknown task, and a PurgeAsset; then the server stopped. */
async function publishPollPurge(level: string): Promise<{ lines: Line[]; taskId: string; exitCode: number | null }> {
  const server = await startServer({ env: { APUBI_LOG_LEVEL: level } })
  const client = new ApubiClient(server.url)
  try {
    writeFileSync(join(server.fileRoot, 'a.txt'), 'logged\n')
    const taskId = await client.loadAsset(pathToFileURL(join(server.fileRoot, 'a.txt')).href, 'logging/a.txt')
    assert.equal((await client.waitFor(taskId, 20)).status, 'SUCCESS')
    await assert.rejects(client.getTaskStatus('no-such-task'), ApubiFault)
    const purge = await client.purgeAsset('logging/a.txt')
    assert.equal((await client.waitFor(purge, 20)).status, 'SUCCESS')
    // Stopped right after the last answers: what was logged must be out when the process is gone
    // (its stdout may still be arriving when it has exited: hence eventually).
    const exitCode = await server.stop({ keep: true })
    const lines = await eventually(() => {
      const lines = logLines(server)
      return lines.at(-1)?.['msg'] === 'stopped' ? lines : undefined
    }, 5_000)
    return { lines, taskId, exitCode }
  } finally {
    await server.stop()
  }
}

const soapLines = (lines: Line[], operation: string) => lines.filter((l) => l['msg'] === 'soap request' && l['operation'] === operation)

describe('request logging', () => {
  it('at info (the default), logs LoadAsset, PurgeAsset, task state changes and refused polls, not polls answered', async () => {
    const { lines, taskId, exitCode } = await publishPollPurge('info')
    assert.equal(exitCode, 0)
    assert.deepEqual(
      soapLines(lines, 'LoadAsset').map((l) => [l['level'], l['taskId'], l['outcome']]),
      [['info', taskId, 'ok']],
    )
    assert.equal(soapLines(lines, 'PurgeAsset').length, 1)
    assert.deepEqual(
      soapLines(lines, 'GetTaskStatus').map((l) => [l['level'], l['taskId'], l['outcome']]),
      [['info', 'no-such-task', 'ERR_TASK_NOT_FOUND']],
    )
    assert.deepEqual(
      lines.filter((l) => l['taskId'] === taskId && l['msg'] !== 'soap request').map((l) => l['msg']),
      ['task started', 'task succeeded'],
    )
  })

  it('at debug, logs each poll too, with its TaskId and outcome', async () => {
    const { lines, taskId } = await publishPollPurge('debug')
    const polls = soapLines(lines, 'GetTaskStatus').filter((l) => l['outcome'] === 'ok')
    assert.ok(polls.length >= 2, `${polls.length} poll lines`)
    for (const poll of polls) assert.equal(poll['level'], 'debug')
    assert.ok(polls.some((l) => l['taskId'] === taskId))
  })
})
