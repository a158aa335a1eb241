// Cache invalidation through a real Varnish (Debian `varnish`, started here): a republish replaces
// what the cache serves, a purge makes it answer 404; PURGE for single URLs, BAN for a package's
// prefix. And a cache that cannot be reached: the task fails, or succeeds with a warning, as its
// base says.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { freePort, startServer, type TestServer } from '../servers/apubi-server.js'
import { startHttpOrigin, type HttpOrigin } from '../servers/http-origin.js'
import { startVarnish, varnishMissing, type VarnishServer } from '../servers/varnish.js'

const missing = varnishMissing()
const PURGE_TOKEN = 'purge-token-5e3c9a'
if (missing) console.warn(`\n*** SKIPPED: cache invalidation against Varnish: ${missing} ***\n`)

describe('cache invalidation (real Varnish)', { skip: missing }, () => {
  let dir: string
  let origin: HttpOrigin
  let varnish: VarnishServer
  let server: TestServer
  let client: ApubiClient
  let sources: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'apubi-invalidate-'))
    const dataDir = join(dir, 'data')
    const cdn = join(dataDir, 'cdn')
    sources = join(dir, 'files')
    mkdirSync(cdn, { recursive: true })
    mkdirSync(sources, { recursive: true })
    origin = await startHttpOrigin(cdn)
    varnish = await startVarnish({ host: '127.0.0.1', port: origin.port })
    const closed = await freePort()
    const base = (folder: string) => pathToFileURL(join(cdn, folder)).href + '/'
    const config = {
      invalidation: [
        { base: base('vod'), publicUrl: `${varnish.url}/vod/`, provider: { type: 'http', method: 'PURGE', caches: [varnish.url], keyHeader: { name: 'X-Purge-Key', token: PURGE_TOKEN } } },
        { base: base('packages'), publicUrl: `${varnish.url}/packages/`, provider: { type: 'http', method: 'BAN', caches: [varnish.url] } },
        { base: base('strict'), publicUrl: 'http://cdn.test/strict/', provider: { type: 'http', caches: [`http://127.0.0.1:${closed}`] } },
        { base: base('lenient'), publicUrl: 'http://cdn.test/lenient/', onFailure: 'warn', provider: { type: 'http', caches: [`http://127.0.0.1:${closed}`] } },
      ],
    }
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
    server = await startServer({ dataDir, fileRoot: sources, env: { APUBI_CONFIG: join(dir, 'config.json'), APUBI_MAX_ATTEMPTS: '2' } })
    client = new ApubiClient(server.url)
  })
  after(async () => {
    await server?.stop({ keep: true })
    await varnish?.stop()
    await origin?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const write = (name: string, content: string) => {
    const path = join(sources, name)
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, content)
    return path
  }
  const viaCache = async (path: string) => {
    const res = await fetch(`${varnish.url}/${path}`)
    return { status: res.status, body: await res.text() }
  }
  const run = async (taskId: string) => (await client.waitFor(taskId, 50)).status
  const detail = async (taskId: string) => (await (await fetch(`${server.url.replace(/\/apubi$/, '')}/admin/api/tasks/${taskId}`)).json()) as {
    invalidations: Array<{ provider: string; request: string; status?: number; ok: boolean; answer: string }>
  }

  it('a republished file is served anew through the cache, a purged one is a 404 (PURGE)', async () => {
    const source = write('movie.txt', 'version 1')
    assert.equal(await run(await client.loadAsset(pathToFileURL(source).href, 'vod/movie.txt')), 'SUCCESS')
    assert.deepEqual(await viaCache('vod/movie.txt'), { status: 200, body: 'version 1' })
    assert.deepEqual(await viaCache('vod/movie.txt'), { status: 200, body: 'version 1' })
    assert.equal(origin.requests('vod/movie.txt'), 1, 'the second fetch came from the cache')

    write('movie.txt', 'version 2')
    const republish = await client.loadAsset(pathToFileURL(source).href, 'vod/movie.txt')
    assert.equal(await run(republish), 'SUCCESS')
    assert.deepEqual(await viaCache('vod/movie.txt'), { status: 200, body: 'version 2' })
    const { invalidations } = await detail(republish)
    assert.deepEqual(invalidations.map(({ provider, request, status, ok }) => ({ provider, request, status, ok })), [
      { provider: 'http', request: `PURGE ${varnish.url}/vod/movie.txt`, status: 200, ok: true },
    ])
    // The operator sees the same in `apubi task`.
    const cli = new URL('../../src/cli/index.ts', import.meta.url).pathname
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'task', republish, '--url', server.url])
    assert.match(stdout, new RegExp(`\\nInvalidations:\\n  #1  \\S+  http  PURGE ${varnish.url}/vod/movie\\.txt  \\S+  ok 200\\n`))

    assert.equal(await run(await client.purgeAsset('vod/movie.txt')), 'SUCCESS')
    assert.equal((await viaCache('vod/movie.txt')).status, 404)
    assert.ok(!JSON.stringify(await detail(republish)).includes(PURGE_TOKEN))
    assert.doesNotMatch(server.output(), new RegExp(PURGE_TOKEN))
  })

  it('a first publish invalidates nothing: nothing was replaced', async () => {
    const taskId = await client.loadAsset(pathToFileURL(write('new.txt', 'fresh')).href, 'vod/new.txt')
    assert.equal(await run(taskId), 'SUCCESS')
    assert.deepEqual((await detail(taskId)).invalidations, [])
  })

  it('a republished package gets its manifests invalidated; a purged one goes by its prefix (BAN)', async () => {
    write('show/master.m3u8', '#EXTM3U\n#v1\n')
    write('show/seg-1.ts', 'segment one')
    const folder = pathToFileURL(join(sources, 'show')).href + '/'
    assert.equal(await run(await client.loadAsset(folder, 'packages/show/')), 'SUCCESS')
    assert.equal((await viaCache('packages/show/master.m3u8')).body, '#EXTM3U\n#v1\n')
    assert.equal((await viaCache('packages/show/seg-1.ts')).body, 'segment one')

    write('show/master.m3u8', '#EXTM3U\n#v2\n')
    const republish = await client.loadAsset(folder, 'packages/show/')
    assert.equal(await run(republish), 'SUCCESS')
    assert.equal((await viaCache('packages/show/master.m3u8')).body, '#EXTM3U\n#v2\n')
    assert.deepEqual((await detail(republish)).invalidations.map((i) => i.request), [`BAN ${varnish.url}/packages/show/master.m3u8`])

    assert.equal(await run(await client.purgeAsset('packages/show/')), 'SUCCESS')
    assert.equal((await viaCache('packages/show/master.m3u8')).status, 404)
    assert.equal((await viaCache('packages/show/seg-1.ts')).status, 404)
  })

  it('a cache that cannot be reached fails the task after its retries, or only warns, as the base says', async () => {
    const source = pathToFileURL(write('clip.txt', 'clip')).href
    for (const base of ['strict', 'lenient']) assert.equal(await run(await client.loadAsset(source, `${base}/clip.txt`)), 'SUCCESS')
    const strict = await client.loadAsset(source, 'strict/clip.txt')
    assert.equal(await run(strict), 'FAILED')
    const lenient = await client.loadAsset(source, 'lenient/clip.txt')
    assert.equal(await run(lenient), 'SUCCESS')
    const failed = (await detail(lenient)).invalidations
    assert.equal(failed.length, 2, 'one request per attempt')
    assert.ok(failed.every((i) => !i.ok && i.status === undefined && /ECONNREFUSED/.test(i.answer)), JSON.stringify(failed))
    const metrics = await (await fetch(`${server.url.replace(/\/apubi$/, '')}/metrics`)).text()
    assert.match(metrics, /apubi_invalidations_total\{provider="any",outcome="warned"\} 1/)
    assert.match(metrics, /apubi_invalidations_total\{provider="http",outcome="ok"\} [1-9]/)
  })
})
