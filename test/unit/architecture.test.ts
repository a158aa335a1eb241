import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, it } from 'node:test'

// The import rules of STYLE.md §11, checked on every run: folders talk through their index.ts,
// and imports point one way (edges → tasks → transfer → backends).
const src = new URL('../../src/', import.meta.url).pathname

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  )
}

const folderOf = (file: string) => relative(src, file).split('/')[0]!.replace(/\.ts$/, '')
const imports = sources(src).flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)].map((m) => ({
    file: relative(src, file),
    from: folderOf(file),
    target: relative(src, join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
  })),
)

/** Which folders each folder may import (besides itself, errors.ts and the shared leaves). */
const allowed: Record<string, string[]> = {
  main: ['admin', 'backends', 'config', 'http', 'invalidate', 'metrics', 'notify', 'soap', 'tasks', 'transfer'],
  admin: ['tasks'],
  metrics: [],
  cli: ['main', 'client', 'config', 'conformance'],
  client: ['soap'],
  conformance: ['client', 'soap'],
  soap: ['tasks'],
  tasks: ['transfer', 'invalidate'],
  invalidate: ['outbound'],
  notify: ['tasks', 'outbound'],
  outbound: [],
  transfer: ['backends', 'packages'],
  backends: ['packages'],
  packages: [],
  http: [],
  config: [],
  observability: [],
  errors: [],
}
const leaves = ['errors', 'observability']

describe('architecture', () => {
  it('imports across folders go through index.ts, in the allowed direction', () => {
    const wrong = imports.filter(({ from, target }) => {
      const to = folderOf(join(src, target))
      if (to === from) return false
      if (to === 'errors') return false
      const throughIndex = target.endsWith('/index.ts') || to === 'main'
      const permitted = leaves.includes(to) || (allowed[from] ?? []).includes(to)
      return !throughIndex || !permitted
    })
    assert.deepEqual(wrong, [])
  })

  it('the leaves import nothing above them', () => {
    const wrong = imports.filter(({ from, target }) => leaves.includes(from) && !['errors', from].includes(folderOf(join(src, target))))
    assert.deepEqual(wrong, [])
  })

  it('a backend protocol folder uses the shared parts of backends/, never another protocol folder', () => {
    const protocolOf = (path: string) => {
      const [top, sub, rest] = path.split('/')
      return top === 'backends' && rest !== undefined ? sub : undefined
    }
    const crossing = imports.filter(({ file, target }) => {
      const from = protocolOf(file)
      const to = protocolOf(target)
      return from !== undefined && to !== undefined && to !== from
    })
    const protocols = new Set(imports.map(({ file }) => protocolOf(file)).filter(Boolean))
    assert.deepEqual([...protocols].sort(), ['file', 'ftp', 'http', 's3', 'sftp'])
    assert.deepEqual(crossing, [])
  })

  it('no import cycle among the backends', () => {
    const edges = new Map<string, string[]>()
    for (const { file, target } of imports) {
      if (file.startsWith('backends/') && target.startsWith('backends/')) edges.set(file, [...(edges.get(file) ?? []), target])
    }
    const cycles: string[][] = []
    const visit = (node: string, path: string[]) => {
      if (path.includes(node)) return void cycles.push([...path.slice(path.indexOf(node)), node])
      for (const next of edges.get(node) ?? []) visit(next, [...path, node])
    }
    for (const node of edges.keys()) visit(node, [])
    assert.deepEqual(cycles, [])
  })

  it('each folder has an index.ts, and its exports are the ones reviewed', async () => {
    const exported: Record<string, string[]> = {}
    for (const folder of ['admin', 'backends', 'client', 'config', 'conformance', 'http', 'invalidate', 'metrics', 'notify', 'observability', 'outbound', 'packages', 'soap', 'tasks', 'transfer']) {
      exported[folder] = Object.keys(await import(join(src, folder, 'index.ts'))).sort()
    }
    assert.deepEqual(exported, {
      admin: ['adminGuard', 'createAdminAccess', 'createAdminEdge'],
      backends: ['checkedLookup', 'createHostLimiter', 'isScheme', 'openBackend'],
      client: ['AdminApiError', 'AdminClient', 'ApubiClient', 'ApubiFault', 'usernameToken'],
      config: ['loadConfig', 'parseTimetable', 'settings'],
      conformance: ['CHECKS', 'Endpoint', 'renderJunit', 'renderTable', 'runChecks', 'simulate'],
      http: ['createEdgeServer'],
      invalidate: ['createInvalidator', 'edgeGridAuthorization', 'edgeGridTimestamp', 'endpointsOf'],
      metrics: ['answerWhileStarting', 'createMetrics', 'createProbeEdge'],
      notify: ['Notifier', 'notificationDocument', 'signatureHeaders', 'verifySignature'],
      observability: ['REDACTED', 'clip', 'createLogger', 'redact', 'secretValuesIn', 'thisInstance'],
      outbound: ['sendOutbound'],
      packages: ['encodePath', 'enumeratePackage', 'manifestFormat', 'readManifest'],
      soap: [
        'APUBI_NS',
        'AuthenticationError',
        'DEFAULT_PARSE_LIMITS',
        'SOAP_ENV_NS',
        'WSSE_NS',
        'WSSE_TOKEN_PROFILE',
        'WSU_NS',
        'createAuthenticator',
        'createSoapEdge',
        'escapeXml',
        'loadServiceDescription',
        'parseRequest',
        'renderFault',
        'renderResponse',
        'toFault',
      ],
      tasks: ['OPERATOR_STATES', 'OperatorService', 'SharedBandwidth', 'TASK_SORTS', 'TASK_STATES', 'TaskService', 'Worker', 'createLoadCheck', 'createSealer', 'createTaskRunner', 'loadSecretKey', 'openPostgres', 'openSqliteStore', 'operatorState', 'publicStatus', 'retentionMs', 'retryDelayMs', 'sealTaskStore', 'startBandwidthShare', 'startHousekeeping', 'wakeableDelay'],
      transfer: ['Bandwidth', 'checkPackageRequest', 'createCredentials', 'createLocationPolicy', 'createOutboundChecks', 'inventory', 'isRelativeDestination', 'originRecord', 'originsOf', 'parseLocation', 'publish', 'publishMirrored', 'purge', 'purgeMirrored', 'resolveDestination'],
    })
  })
})
