// The package as operators get it: `npm pack` of a fresh copy of the project (its `prepare` builds
// dist/), installed with `npm install -g` into an empty prefix, and its `apubi serve`, run from an
// empty folder, passing the contract smoke test (the checks of shared/acceptance/smoke.sh: an unknown
// TaskId faults; a file and a directory published from file:// reach SUCCESS with the same bytes; a
// purge removes them). No source file and no dev dependency is installed, so none is needed at run time.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ApubiClient, ApubiFault } from '../../src/client/index.js'
import { listFiles } from '../e2e/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'

const root = new URL('../../', import.meta.url).pathname
/** What `npm pack` needs of the project: its sources, build scripts and the files it ships. */
const PROJECT_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'scripts', 'src', 'docs', 'deploy']
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string>; devDependencies: Record<string, string> }
// The installed `apubi` starts with `#!/usr/bin/env node`: the node running this test answers it.
const env = { PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH']}`, NODE_OPTIONS: '' }

function run(program: string, args: string[], cwd: string): string {
  return execFileSync(program, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
}

describe('the npm package, installed globally', () => {
  let work: string
  let prefix: string
  let installed: string
  let server: TestServer

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'apubi-install-'))
    const project = join(work, 'project')
    for (const file of PROJECT_FILES) cpSync(join(root, file), join(project, file), { recursive: true })
    // The build tools come from the project's own node_modules; nothing of them goes into the package.
    symlinkSync(join(root, 'node_modules'), join(project, 'node_modules'))
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], project)) as Array<{ filename: string }>
    prefix = join(work, 'prefix')
    run('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(work, packed!.filename)], work)
    installed = join(prefix, 'lib', 'node_modules', manifest.name)
    rmSync(project, { recursive: true })
    server = await startServer({ command: [join(prefix, 'bin', 'apubi'), 'serve'], env })
  })

  after(async () => {
    await server?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('installs the compiled server, the docs and the systemd unit, and no source file', async () => {
    const files = await listFiles(installed)
    const own = files.filter((f) => !f.startsWith('node_modules/'))
    assert.ok(own.includes('dist/cli/index.js'))
    assert.ok(own.includes('deploy/apubi.service'))
    assert.ok(own.includes('docs/configuration.md'))
    assert.deepEqual(own.filter((f) => f.endsWith('.ts') || f.startsWith('src/') || f.startsWith('test/')), [])
  })

  it('installs the run-time dependencies and no dev dependency', () => {
    const modules = join(installed, 'node_modules')
    const present = (name: string) => existsSync(join(modules, name, 'package.json')) || existsSync(join(prefix, 'lib', 'node_modules', name, 'package.json'))
    assert.deepEqual(Object.keys(manifest.dependencies).filter((name) => !present(name)), [])
    assert.deepEqual(Object.keys(manifest.devDependencies).filter(present), [])
  })

  it('passes the contract smoke test: a fault, a file and a directory published, a purge', async () => {
    const client = new ApubiClient(server.url)
    await assert.rejects(client.getTaskStatus('TestAssetA'), (e: unknown) => e instanceof ApubiFault && e.httpStatus >= 400 && /does not exist/i.test(e.detail + e.faultstring))

    const source = join(server.fileRoot, 'src')
    mkdirSync(join(source, 'pkg', 'a'), { recursive: true })
    const movie = Buffer.alloc(1_048_577, 'movie')
    writeFileSync(join(source, 'movie.ts'), movie)
    for (const i of [1, 2, 3]) writeFileSync(join(source, 'pkg', 'a', `s${i}.ts`), Buffer.alloc(i * 1000, i))
    writeFileSync(join(source, 'pkg', 'index.m3u8'), '#EXTM3U\n')
    const cdn = join(server.dataDir, 'cdn', 'Smoke_01')

    // The installed CLI, as the WFM would: it prints the task's end.
    const printed = run(join(prefix, 'bin', 'apubi'), ['load', `file://${source}/movie.ts`, 'Smoke_01/movie.ts', '--wait', '--interval', '100', '--url', server.url], work)
    assert.match(printed, /SUCCESS Smoke_01\/movie\.ts/)
    assert.ok(readFileSync(join(cdn, 'movie.ts')).equals(movie))

    const directory = await client.waitFor(await client.loadAsset(`file://${source}/pkg/`, 'Smoke_01/pkg/'), 100)
    assert.equal(directory.status, 'SUCCESS')
    assert.deepEqual(await listFiles(join(cdn, 'pkg')), await listFiles(join(source, 'pkg')))
    for (const file of await listFiles(join(source, 'pkg'))) assert.ok(readFileSync(join(cdn, 'pkg', file)).equals(readFileSync(join(source, 'pkg', file))), file)

    assert.equal((await client.waitFor(await client.purgeAsset('Smoke_01/'), 100)).status, 'SUCCESS')
    assert.deepEqual(readdirSync(join(server.dataDir, 'cdn')), [])
  })
})
