import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFileBackend } from '../../src/backends/file/index.js'
import { backendConformance } from './conformance.js'

backendConformance('file', async (context) => {
  const root = await mkdtemp(join(tmpdir(), 'apubi-file-'))
  const backend = createFileBackend({ scheme: 'file', host: '', port: 0 }, context)
  return { backend, root, network: false, close: () => rm(root, { recursive: true, force: true }) }
})
