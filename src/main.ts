import { mkdirSync, readFileSync } from 'node:fs'
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { adminGuard, createAdminAccess, createAdminEdge } from './admin/index.js'
import { createHostLimiter } from './backends/index.js'
import { parseTimetable, type Config } from './config/index.js'
import { createEdgeServer } from './http/index.js'
import { PublishError } from './errors.js'
import { createInvalidator, endpointsOf } from './invalidate/index.js'
import { answerWhileStarting, createMetrics, createProbeEdge } from './metrics/index.js'
import { Notifier } from './notify/index.js'
import { redact, thisInstance, type Logger } from './observability/index.js'
import { createAuthenticator, createSoapEdge, loadServiceDescription } from './soap/index.js'
import { createLoadCheck, createSealer, createTaskRunner, loadSecretKey, OperatorService, openPostgres, openSqliteStore, retentionMs, retryDelayMs, sealTaskStore, SharedBandwidth, startBandwidthShare, startHousekeeping, TaskService, Worker } from './tasks/index.js'
import { Bandwidth, createCredentials, createLocationPolicy, createOutboundChecks, originsOf } from './transfer/index.js'

export interface RunningServer {
  readonly server: Server | HttpsServer
  readonly port: number
  /** Stops accepting requests and claiming tasks, lets running tasks finish for the grace period, closes. */
  shutdown(): Promise<void>
}

/** The composition root: config → store → backends → task engine → HTTP (listening from the start, probes only until the store is open). */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  if (config.cdnBase.startsWith('file:')) mkdirSync(fileURLToPath(config.cdnBase), { recursive: true })
  const sealer = createSealer(loadSecretKey(config))
  // Listening before the database is open: orchestrators see the process alive (/healthz) but not
  // ready (/readyz 503) while PostgreSQL comes up; the full routes replace these once it answers.
  let route: RequestListener = answerWhileStarting
  const edge = createEdgeServer(
    {
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      maxConnections: config.maxConnections,
      maxBodyBytes: config.maxBodyBytes,
      ...(config.tlsCert && config.tlsKey && { tls: { cert: config.tlsCert, key: config.tlsKey, ...(config.tlsClientCa && { clientCa: config.tlsClientCa }) } }),
      logger,
    },
    (req, res) => route(req, res),
  )
  const { server } = edge
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
  })
  // PostgreSQL when a URL is given: instances on one database share tasks, host caps and housekeeping.
  const shared = config.databaseUrl
    ? await openPostgres(config.databaseUrl, {
        poolSize: config.databasePoolSize,
        connectionsPerHost: config.connectionsPerHost,
        waitMs: config.databaseWaitS * 1000,
        keyFingerprint: sealer.fingerprint,
        now: Date.now,
        logger,
      }).catch(async (e: unknown) => {
        await new Promise((resolve) => server.close(resolve))
        throw e
      })
    : undefined
  const store = sealTaskStore(shared?.store ?? openSqliteStore(config.databaseFile), sealer, logger)
  const policy = createLocationPolicy(config.fileRoots, { rules: config.locationRules, allowedHosts: config.allowedHosts, deniedHosts: config.deniedHosts })
  const transfer = {
    backends: {
      hosts: shared?.hosts ?? createHostLimiter(config.connectionsPerHost),
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
    manifestExtensions: config.manifestExtensions,
  }
  const now = Date.now
  const bandwidth = new Bandwidth({ ...(config.bandwidthLimit && { overall: config.bandwidthLimit }), hosts: config.bandwidthHosts }, parseTimetable, now)
  // On a shared database a change made at run time is kept there, for every instance and every restart.
  const sharedBandwidth = shared && new SharedBandwidth(bandwidth, shared.bandwidth)
  // Before the first task and the first answer: a restarted instance never works under the configured caps in place of the changed ones.
  await sharedBandwidth?.refresh().catch((e) => logger.warn({ err: e }, 'putting in force the bandwidth caps changed at run time failed'))
  // Read at scrape time only, once `operator` below exists.
  const metrics = createMetrics({
    overview: () => operator.overview(),
    hosts: () => transfer.backends.hosts.inUse?.() ?? [],
    bandwidth: () => bandwidth.view(),
    now,
    readiness: () => readiness(),
    certificateExpiresAt: () => edge.certificateExpiresAt(),
    instance: thisInstance(),
  })
  // Caches, CDN APIs and webhook receivers are judged by the location policy like any storage.
  const outbound = { policy: createOutboundChecks(policy), timeoutMs: config.timeoutMs, ...(transfer.backends.tlsCa && { tlsCa: transfer.backends.tlsCa }) }
  checkOutboundUrls([...config.invalidation.flatMap(endpointsOf), ...config.webhooks.map((hook) => hook.url)], outbound.policy)
  const invalidator = createInvalidator(config.invalidation, { outbound, now })
  const worker = new Worker(store, createTaskRunner(policy, transfer, { bandwidth, mirrors: config.mirrors, invalidator }), {
    name: thisInstance().instance,
    concurrency: config.workers,
    leaseMs: config.leaseMs,
    taskTimeoutMs: config.taskTimeoutMs,
    pollMs: config.pollMs,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    now,
    logger,
    observer: metrics.tasks,
    expectedRate: (taskId) => bandwidth.expectedRate(taskId),
  })
  const tasks = new TaskService({ store, policy, cdnBase: config.cdnBase, maxAttempts: config.maxAttempts, now, onSubmitted: () => worker.wake(), digest: sealer.digest, checkLoad: createLoadCheck(policy, transfer) })
  const soap = createSoapEdge({
    path: config.soapPath,
    maxBodyBytes: config.maxBodyBytes,
    limits: { maxDepth: config.maxXmlDepth, maxElements: config.maxXmlElements, maxAttributes: config.maxXmlAttributes, maxTextLength: config.maxXmlText },
    description: loadServiceDescription(config.publicUrl),
    tasks,
    auth: createAuthenticator({
      user: config.soapUser,
      password: config.soapPassword,
      allowedClients: config.allowedClients,
      windowMs: config.authWindowS * 1000,
      now,
    }),
    logger,
    onRequest: metrics.soapRequest,
  })
  const notifier = new Notifier(store, {
    webhooks: config.webhooks,
    outbound,
    pollMs: config.pollMs,
    // A sender that died mid-request is replaced once its request could no longer be running.
    leaseMs: 2 * config.timeoutMs,
    maxAttempts: config.notifyMaxAttempts,
    retryDelayMs: (attempt) => retryDelayMs(attempt, config.retryBaseMs, config.retryMaxMs),
    now,
    logger: logger.child({ part: 'notify' }),
    onAttempt: metrics.notificationSent,
  })
  const operator = new OperatorService({
    store,
    worker,
    now,
    onSubmitted: () => worker.wake(),
    onResent: () => notifier.wake(),
    originsOf: (target) => originsOf(target, config.mirrors).map(({ base }) => redact(base)),
  })
  const access = createAdminAccess([...(config.adminToken ? [{ token: config.adminToken, role: 'operator' as const }] : []), ...config.adminTokens])
  const readiness = async () => ({ database: await store.ping().then(() => true, () => false), workers: worker.accepting })
  const admin = createAdminEdge({ operator, access, logger, now, instance: thisInstance(), readiness, bandwidth: sharedBandwidth || bandwidth })
  const probes = createProbeEdge({
    metrics,
    readiness,
    allowMetrics: adminGuard(access, logger),
    logger,
  })

  // Each edge answers with false when the request is not its own. The SOAP edge, which answers nearly
  // every request, says so at once; the others after a promise.
  const handlers = [admin, probes]
  const serveOthers = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const handler of handlers) if (await handler(req, res)) return
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Not found; the SOAP endpoint is ${config.soapPath}\n`)
  }
  route = (req, res) => {
    if (soap(req, res)) return
    serveOthers(req, res).catch((e: unknown) => {
      logger.error({ err: e }, 'request failed')
      res.destroy()
    })
  }
  // SIGHUP re-reads the certificate (renewed by certbot, a secret store, …); without TLS it keeps its
  // default meaning, so a foreground server still ends with its terminal.
  const onHangup = () => {
    logger.info({ signal: 'SIGHUP' }, 'signal received')
    edge.reloadTls()
  }
  if (edge.secure) process.on('SIGHUP', onHangup)
  const stopHousekeeping = startHousekeeping(store, { leaseMs: config.leaseMs, retentionMs: retentionMs(config.retentionDays), now, logger, exclusive: shared?.exclusive })
  // Instances on one database split every cap by their running tasks; alone, this one takes it all.
  const stopBandwidthShare = sharedBandwidth ? startBandwidthShare({ store, running: () => worker.running, bandwidth, overrides: sharedBandwidth, now, logger }) : () => {}
  worker.start()
  notifier.start()
  const port = (server.address() as AddressInfo).port
  logger.info({ port, host: config.host, path: config.soapPath, tls: edge.secure, dataDir: config.dataDir, credentialsSealed: sealer.keyed }, 'apubi-server listening')

  let closing: Promise<void> | undefined
  const shutdown = (): Promise<void> =>
    (closing ??= (async () => {
      logger.info({ running: worker.running, graceMs: config.shutdownGraceMs }, 'shutting down')
      process.off('SIGHUP', onHangup)
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      await worker.stop(config.shutdownGraceMs)
      await notifier.stop()
      stopHousekeeping()
      stopBandwidthShare()
      server.closeAllConnections()
      await closed
      await store.close()
      logger.info('stopped')
    })())
  return { server, port, shutdown }
}

/**
 * Refuses to start with a cache, CDN API or webhook URL that the location policy denies: each request
 * would fail anyway (they are checked again when sent, as the rules may change with a restart only).
 * @throws PublishError ERR_CONFIG_INVALID listing every refused URL.
 */
function checkOutboundUrls(urls: readonly string[], policy: { checkUrl(url: string): void }): void {
  const problems = urls.flatMap((url) => {
    try {
      policy.checkUrl(url)
      return []
    } catch (e) {
      return [e instanceof PublishError ? e.message : String(e)]
    }
  })
  if (problems.length > 0) throw new PublishError('ERR_CONFIG_INVALID', `Invalid configuration:\n  ${problems.join('\n  ')}`)
}
