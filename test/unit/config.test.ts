// loadConfig: defaults, file < environment < flags, every problem reported at once, derived values.
// The environment is passed in, never taken from process.env.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.js'
import { thrownMessage } from './thrown.js'

const dir = mkdtempSync(join(tmpdir(), 'apubi-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
function configFile(content: unknown): string {
  const path = join(dir, `config-${++files}.json`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}


describe('loadConfig', () => {
  it('fills every default from an empty environment', () => {
    const config = loadConfig({})
    const dataDir = resolve('./data')
    assert.deepEqual(
      { ...config },
      {
        port: 8080,
        host: '0.0.0.0',
        dataDir,
        databaseWaitS: 60,
        databasePoolSize: 10,
        fileRoots: [dataDir],
        cdnBase: `file://${dataDir}/cdn/`,
        soapPath: '/apubi',
        publicUrl: 'http://127.0.0.1:8080/apubi',
        logLevel: 'info',
        logFormat: 'auto',
        workers: 4,
        parallelFiles: 4,
        connectionsPerHost: 8,
        timeoutMs: 30_000,
        taskTimeoutMs: 6 * 3_600_000,
        maxAttempts: 5,
        retryBaseMs: 2_000,
        retryMaxMs: 300_000,
        leaseMs: 30_000,
        pollMs: 500,
        shutdownGraceMs: 25_000,
        retentionDays: 7,
        maxBodyBytes: 1 << 20,
        maxXmlDepth: 32,
        maxXmlElements: 2_000,
        maxXmlAttributes: 64,
        maxXmlText: 64 * 1024,
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 5_000,
        maxConnections: 128,
        authWindowS: 300,
        allowedClients: [],
        checksums: ['md5', 'sha256'],
        manifestExtensions: ['m3u8', 'mpd'],
        sshHostKeyPolicy: 'strict',
        s3Buckets: {},
        allowedHosts: [],
        deniedHosts: [],
        locationRules: { allow: [], deny: [] },
        credentials: [],
        bandwidthHosts: {},
        mirrors: [],
        adminTokens: [],
        invalidation: [],
        webhooks: [],
        notifyMaxAttempts: 10,
        databaseFile: join(dataDir, 'apubi.sqlite'),
        sshKnownHosts: join(dataDir, 'known_hosts'),
        s3Region: 'us-east-1',
      },
    )
  })

  it('is frozen, lists included', () => {
    const config = loadConfig({})
    assert.ok(Object.isFrozen(config))
    assert.ok(Object.isFrozen(config.fileRoots))
  })

  it('reads the JSON file named by APUBI_CONFIG, and the environment wins over it', () => {
    const APUBI_CONFIG = configFile({ port: 9000, workers: 2, logLevel: 'debug', fileRoots: ['/srv/a', '/srv/b'] })
    const fromFile = loadConfig({ APUBI_CONFIG })
    assert.deepEqual([fromFile.port, fromFile.workers, fromFile.logLevel, fromFile.fileRoots], [9000, 2, 'debug', ['/srv/a', '/srv/b']])

    const config = loadConfig({ APUBI_CONFIG, APUBI_PORT: '9100', APUBI_FILE_ROOTS: '/srv/c::/srv/d' })
    assert.equal(config.port, 9100)
    assert.deepEqual(config.fileRoots, ['/srv/c', '/srv/d'])
    assert.equal(config.workers, 2)
    assert.equal(config.logLevel, 'debug')
  })

  it('lets flags win over the environment', () => {
    assert.equal(loadConfig({ APUBI_PORT: '9100' }, { port: 9200 }).port, 9200)
  })

  it('takes an empty variable as unset', () => {
    assert.equal(loadConfig({ APUBI_PORT: '', APUBI_LOG_LEVEL: '' }).port, 8080)
  })

  it('reports several invalid values together in one ERR_CONFIG_INVALID', () => {
    const message = thrownMessage('ERR_CONFIG_INVALID', () =>
      loadConfig({
        APUBI_PORT: 'eighty',
        APUBI_WORKERS: '0',
        APUBI_LOG_LEVEL: 'loud',
        APUBI_SOAP_PATH: 'apubi',
        APUBI_PUBLIC_URL: 'not a url',
        APUBI_CONFIG: configFile({ retentionDays: -1 }),
      }),
    )
    for (const name of ['APUBI_PORT', 'APUBI_WORKERS', 'APUBI_LOG_LEVEL', 'APUBI_SOAP_PATH', 'APUBI_PUBLIC_URL', 'APUBI_RETENTION_DAYS']) {
      assert.match(message, new RegExp(`${name} \\(`), `${name} is named in:\n${message}`)
    }
    assert.doesNotMatch(message, /APUBI_HOST/)
  })

  it('needs both the SOAP user and password, or neither, and addresses or ranges in the client allowlist', () => {
    const message = thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_SOAP_USER: 'wfm', APUBI_ALLOWED_CLIENTS: '10.0.0.0/8,cms.example,10.0.0.0/33' }))
    assert.match(message, /APUBI_SOAP_USER and APUBI_SOAP_PASSWORD: set both to require authentication, or neither/)
    assert.match(message, /APUBI_ALLOWED_CLIENTS \(allowedClients\): 1 must be an IP address or a CIDR range; 2 must be an IP address or a CIDR range/)
    const config = loadConfig({ APUBI_SOAP_USER: 'wfm', APUBI_SOAP_PASSWORD: 'p', APUBI_ALLOWED_CLIENTS: ' 10.0.0.0/8 , ::1 ' })
    assert.deepEqual([config.soapUser, config.soapPassword, config.allowedClients], ['wfm', 'p', ['10.0.0.0/8', '::1']])
  })

  it('serves HTTPS with a certificate and key together, the default public URL then https; timeouts in order', () => {
    const message = thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_TLS_KEY: '/k.pem', APUBI_TLS_CLIENT_CA: '/ca.pem', APUBI_HEADERS_TIMEOUT_MS: '40000' }))
    assert.match(message, /APUBI_TLS_CERT and APUBI_TLS_KEY: set both to serve HTTPS, or neither/)
    assert.match(message, /APUBI_TLS_CLIENT_CA: needs APUBI_TLS_CERT and APUBI_TLS_KEY/)
    assert.match(message, /APUBI_HEADERS_TIMEOUT_MS: must not be longer than APUBI_REQUEST_TIMEOUT_MS/)
    const config = loadConfig({ APUBI_TLS_CERT: '/c.pem', APUBI_TLS_KEY: '/k.pem', APUBI_PORT: '8443' })
    assert.equal(config.publicUrl, 'https://127.0.0.1:8443/apubi')
    assert.equal(loadConfig({ APUBI_TLS_CERT: '/c.pem', APUBI_TLS_KEY: '/k.pem', APUBI_PUBLIC_URL: 'https://apubi.example/apubi' }).publicUrl, 'https://apubi.example/apubi')
  })

  it('refuses a port out of range and a fractional count', () => {
    const message = thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_PORT: '70000', APUBI_MAX_ATTEMPTS: '2.5' }))
    assert.match(message, /APUBI_PORT/)
    assert.match(message, /APUBI_MAX_ATTEMPTS/)
  })

  it('refuses a config file that is not JSON, naming it', () => {
    const path = configFile('{ port: 9000 ')
    assert.match(thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_CONFIG: path })), new RegExp(path.replaceAll('.', '\\.')))
  })

  it('refuses a config file that does not exist', () => {
    thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_CONFIG: join(dir, 'missing.json') }))
  })

  describe('derived values', () => {
    it('puts file roots, the CDN base and the database under the data dir', () => {
      const config = loadConfig({ APUBI_DATA_DIR: '/srv/apubi data' })
      assert.equal(config.dataDir, '/srv/apubi data')
      assert.deepEqual(config.fileRoots, ['/srv/apubi data'])
      assert.equal(config.cdnBase, 'file:///srv/apubi%20data/cdn/')
      assert.equal(config.databaseFile, '/srv/apubi data/apubi.sqlite')
    })

    it('makes a relative data dir and relative file roots absolute', () => {
      const config = loadConfig({ APUBI_DATA_DIR: 'var/apubi', APUBI_FILE_ROOTS: 'in:out' })
      assert.equal(config.dataDir, resolve('var/apubi'))
      assert.deepEqual(config.fileRoots, [resolve('in'), resolve('out')])
    })

    it('ends the CDN base with a slash', () => {
      assert.equal(loadConfig({ APUBI_CDN_BASE: 'ftp://cdn:pw@cdn.example/www' }).cdnBase, 'ftp://cdn:pw@cdn.example/www/')
      assert.equal(loadConfig({ APUBI_CDN_BASE: 'file:///srv/cdn/' }).cdnBase, 'file:///srv/cdn/')
    })

    it("refuses URL settings whose password holds an unencoded '@', '/' or '#', without showing any of them", () => {
      for (const [variable, value] of [
        ['APUBI_CDN_BASE', 'ftp://cdn:Xy@Secret9@cdn.example/www/'],
        ['APUBI_CDN_BASE', 'sftp://cdn:Xy/Secret9@cdn.example/www/'],
        ['APUBI_DATABASE_URL', 'postgres://apubi:Xy@Secret9@db.example/apubi'],
        ['APUBI_DATABASE_URL', 'postgres://apubi:Xy#Secret9@db.example/apubi'],
      ] as const) {
        assert.throws(
          () => loadConfig({ [variable]: value }),
          (e: Error) => e.message.includes(`${variable} (`) && e.message.includes('percent-encode') && !/Xy|Secret9|example/.test(e.message),
          `${variable}=${value}`,
        )
      }
      assert.equal(loadConfig({ APUBI_CDN_BASE: 'ftp://cdn:Xy%40Secret9@cdn.example/www/' }).cdnBase, 'ftp://cdn:Xy%40Secret9@cdn.example/www/')
      // The credentials list takes host URLs only: an '@' there is refused as it always was.
      assert.throws(() => loadConfig({ APUBI_CONFIG: '' }, { credentials: [{ url: 'ftp://a@b@cdn.example', user: 'u' }] } as never))
    })

    it('derives the public URL from host, port and path, with a loopback address for a wildcard host', () => {
      assert.equal(loadConfig({ APUBI_PORT: '9000', APUBI_SOAP_PATH: '/soap/apubi' }).publicUrl, 'http://127.0.0.1:9000/soap/apubi')
      assert.equal(loadConfig({ APUBI_HOST: '::' }).publicUrl, 'http://127.0.0.1:8080/apubi')
      assert.equal(loadConfig({ APUBI_HOST: 'publisher.example', APUBI_PORT: '80' }).publicUrl, 'http://publisher.example:80/apubi')
    })

    it('keeps a public URL that was given', () => {
      assert.equal(loadConfig({ APUBI_PUBLIC_URL: 'https://publisher.example/apubi' }).publicUrl, 'https://publisher.example/apubi')
    })
  })
})
