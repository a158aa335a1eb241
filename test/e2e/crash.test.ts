import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { eventually, listFiles, publishedFile, queryRow, sha256File, writeLargeFile } from './helpers.js'

const SIZE = 400 * 1024 * 1024
// Short leases so the restarted server takes the killed one's task back quickly.
const env = { APUBI_LEASE_MS: '1500' }
const servers: TestServer[] = []
after(async () => {
  for (const s of servers.reverse()) await s.stop()
})

it('a publish interrupted by SIGKILL finishes after restart under the same TaskId, bytes identical, no temporary file left', async () => {
  const first = await startServer({ env })
  servers.push(first)
  const source = join(first.fileRoot, 'big.ts')
  await writeLargeFile(source, SIZE)
  const taskId = await new ApubiClient(first.url).loadAsset(pathToFileURL(source).href, 'Crash/big.ts')

  const cdn = join(first.dataDir, 'cdn/Crash')
  // Kill once the temporary file holds part of the asset: the copy is mid-way.
  const temporary = await eventually(async () => {
    const files = await listFiles(cdn).catch(() => [])
    const part = files.find((f) => f.endsWith('.part'))
    return part && statSync(join(cdn, part)).size > 16 << 20 ? part : undefined
  })
  await first.kill()
  assert.ok(statSync(join(cdn, temporary)).size < SIZE, 'the kill came after the copy had finished')

  const second = await startServer({ env, dataDir: first.dataDir, fileRoot: first.fileRoot })
  servers.push(second)
  const result = await new ApubiClient(second.url).waitFor(taskId, 100)
  assert.deepEqual(result, { status: 'SUCCESS', destinationAsset: 'Crash/big.ts' })
  const sha256 = await sha256File(source)
  assert.equal(await sha256File(join(cdn, 'big.ts')), sha256)
  assert.deepEqual(await listFiles(cdn), ['big.ts'])

  // The second attempt continued the temporary file rather than writing it again, and says so.
  await second.stop({ keep: true })
  const file = publishedFile(first.dataDir, taskId)
  assert.equal(file.size, SIZE)
  assert.equal(file.sha256, sha256)
  assert.ok(file.resumed_from >= 16 << 20, `resumed from byte ${file.resumed_from}`)
})

it('SIGTERM lets a transfer run for the grace period, then hands it back; the restarted server finishes it without counting the attempt', async () => {
  const first = await startServer({ env: { ...env, APUBI_SHUTDOWN_GRACE_MS: '200' } })
  servers.push(first)
  const source = join(first.fileRoot, 'big.ts')
  await writeLargeFile(source, SIZE)
  const taskId = await new ApubiClient(first.url).loadAsset(pathToFileURL(source).href, 'Term/big.ts')
  const cdn = join(first.dataDir, 'cdn/Term')
  await eventually(async () => {
    const part = (await listFiles(cdn).catch(() => [])).find((f) => f.endsWith('.part'))
    return part && statSync(join(cdn, part)).size > 16 << 20 ? part : undefined
  })
  assert.equal(await first.stop({ keep: true }), 0, 'a graceful stop exits 0')
  assert.match(first.output(), /"msg":"task released at shutdown"/)

  const second = await startServer({ env, dataDir: first.dataDir, fileRoot: first.fileRoot })
  servers.push(second)
  assert.equal((await new ApubiClient(second.url).waitFor(taskId, 100)).status, 'SUCCESS')
  assert.equal(await sha256File(join(cdn, 'big.ts')), await sha256File(source))
  await second.stop({ keep: true })
  const task = queryRow<{ attempts: number }>(first.dataDir, 'SELECT attempts FROM task WHERE id = ?', taskId)
  assert.equal(task.attempts, 1, 'the released attempt does not count')
})

it('a second server on the same data folder stops at start and says why; the first keeps serving', async () => {
  const first = await startServer({})
  servers.push(first)
  await assert.rejects(
    startServer({ dataDir: first.dataDir, fileRoot: first.fileRoot }),
    /apubi\.sqlite is in use by another process: is another apubi-server running on this data folder\?/,
  )
  await assert.rejects(new ApubiClient(first.url).getTaskStatus('00000000-0000-0000-0000-000000000000'), /Task Id does not exist/)
})
