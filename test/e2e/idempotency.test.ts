import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { writeLargeFile } from './helpers.js'

let server: TestServer
let client: ApubiClient
before(async () => {
  server = await startServer()
  client = new ApubiClient(server.url)
  // Large enough that the first task is still running when its duplicates arrive.
  await writeLargeFile(join(server.fileRoot, 'a.ts'), 128 << 20)
})
after(() => server.stop())

it('identical LoadAssets sent concurrently get one TaskId; after it ends, a new request makes a new task', async () => {
  const source = pathToFileURL(join(server.fileRoot, 'a.ts')).href
  const ids = await Promise.all(Array.from({ length: 20 }, () => client.loadAsset(source, 'Same/a.ts')))
  assert.equal(new Set(ids).size, 1)
  assert.equal((await client.waitFor(ids[0]!, 50)).status, 'SUCCESS')
  const again = await client.loadAsset(source, 'Same/a.ts')
  assert.notEqual(again, ids[0])
  assert.equal((await client.waitFor(again, 50)).status, 'SUCCESS')
})

it('different destinations or metadata make different tasks', async () => {
  const source = pathToFileURL(join(server.fileRoot, 'a.ts')).href
  const [a, b, c] = await Promise.all([
    client.loadAsset(source, 'One/a.ts'),
    client.loadAsset(source, 'Two/a.ts'),
    client.loadAsset(source, 'One/a.ts', '<MetaData><Title>other</Title></MetaData>'),
  ])
  assert.equal(new Set([a, b, c]).size, 3)
})

it('identical PurgeAssets in flight share a TaskId', async () => {
  const ids = await Promise.all(Array.from({ length: 10 }, () => client.purgeAsset('Same/')))
  assert.equal(new Set(ids).size, 1)
  assert.equal((await client.waitFor(ids[0]!, 50)).status, 'SUCCESS')
})
