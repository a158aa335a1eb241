import { mkdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createHostLimiter } from './backends/index.js'
import type { Config } from './config/index.js'
import type { Logger } from './observability/index.js'
import { createSoapEdge, DEFAULT_PARSE_LIMITS, loadServiceDescription } from './soap/index.js'
import { createTaskRunner, openSqliteStore, retentionMs, startHousekeeping, TaskService, Worker } from './tasks/index.js'
import { createCredentials, createLocationPolicy } from './transfer/index.js'

export interface RunningServer {
  readonly server: Server
  readonly port: number
  /** Stops accepting requests and claiming tasks, lets running tasks finish for the grace period, closes. */
  shutdown(): Promise<void>
}

/** The composition root: config → store → backends → task engine → HTTP. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  if (config.cdnBase.startsWith('file:')) mkdirSync(fileURLToPath(config.cdnBase), { recursive: true })
  const store = openSqliteStore(config.databaseFile)
  const policy = createLocationPolicy(config.fileRoots)
  const transfer = {
    backends: {
      hosts: createHostLimiter(config.connectionsPerHost),
      timeoutMs: config.timeoutMs,
      ...(config.caFile && { tlsCa: readFileSync(config.caFile, 'utf8') }),
      ssh: {
        knownHostsFile: config.sshKnownHosts,
        hostKeyPolicy: config.sshHostKeyPolicy,
        onKeyRecorded: (key: string) => logger.warn({ key, file: config.sshKnownHosts }, 'trusted an SFTP host key on first sight (accept-new)'),
      },
      s3: {
        region: config.s3Region,
        buckets: config.s3Buckets,
        ...(config.s3Endpoint && { endpoint: config.s3Endpoint }),
        ...((config.s3ForcePathStyle ?? config.s3Endpoint !== undefined) && { forcePathStyle: true }),
      },
    },
    credentials: createCredentials(config.credentials, config.sshPrivateKey),
    checksums: config.checksums,
    parallelFiles: config.parallelFiles,
    connectionsPerHost: config.connectionsPerHost,
  }
  const now = Date.now
  const worker = new Worker(store, createTaskRunner(policy, transfer), {
    name: `${hostname()}:${process.pid}`,
    concurrency: config.workers,
    leaseMs: config.leaseMs,
    taskTimeoutMs: config.taskTimeoutMs,
    pollMs: config.pollMs,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    now,
    logger,
  })
  const tasks = new TaskService({ store, policy, cdnBase: config.cdnBase, maxAttempts: config.maxAttempts, now, onSubmitted: () => worker.wake() })
  const soap = createSoapEdge({
    path: config.soapPath,
    maxBodyBytes: config.maxBodyBytes,
    limits: DEFAULT_PARSE_LIMITS,
    description: loadServiceDescription(config.publicUrl),
    tasks,
    logger,
  })

  const server = createServer((req, res) => {
    soap(req, res)
      .then((handled) => {
        if (!handled) res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Not found; the SOAP endpoint is ${config.soapPath}\n`)
      })
      .catch((e) => {
        logger.error({ err: e }, 'request failed')
        res.destroy()
      })
  })
  const stopHousekeeping = startHousekeeping(store, { leaseMs: config.leaseMs, retentionMs: retentionMs(config.retentionDays), now, logger })
  worker.start()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
  })
  const port = (server.address() as AddressInfo).port
  logger.info({ port, host: config.host, path: config.soapPath, dataDir: config.dataDir }, 'apubi-server listening')

  let closing: Promise<void> | undefined
  const shutdown = (): Promise<void> =>
    (closing ??= (async () => {
      logger.info({ running: worker.running, graceMs: config.shutdownGraceMs }, 'shutting down')
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      await worker.stop(config.shutdownGraceMs)
      stopHousekeeping()
      server.closeAllConnections()
      await closed
      await store.close()
      logger.info('stopped')
    })())
  return { server, port, shutdown }
}
