import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { Logger } from '../observability/index.js'
import { certificateExpiry, describeCertificate, readTlsFiles, type TlsFiles } from './tls.js'

/** What bounds a client's hold on the server before any request is handled. */
export interface EdgeServerOptions {
  /** For the headers and, over TLS, the handshake. */
  readonly headersTimeoutMs: number
  /** For the whole request, body included. */
  readonly requestTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly maxConnections: number
  /** A request announcing a larger body gets its answer at once instead of `100 Continue`. */
  readonly maxBodyBytes: number
  /** Serve HTTPS (only) with these files. */
  readonly tls?: TlsFiles
  readonly logger: Logger
}

export interface EdgeServer {
  readonly server: HttpServer | HttpsServer
  readonly secure: boolean
  /**
   * Re-reads the TLS files and serves them to new connections; open connections and running tasks
   * are untouched. Any problem is logged and the current certificate stays. False when nothing changed.
   */
  reloadTls(): boolean
  /** When the certificate served now stops being valid (epoch ms); undefined without TLS. */
  certificateExpiresAt(): number | undefined
}

/** Refused connections are logged at most this often, with their count: a flood must not flood the log. */
const DROP_LOG_INTERVAL_MS = 10_000

/**
 * The HTTP(S) server in front of `handler`, with the limits against slow and greedy clients: header
 * and request timeouts, a cap on open connections (more are closed as they arrive), and no
 * `100 Continue` for a body over the cap.
 * @throws PublishError ERR_CONFIG_INVALID when the TLS files cannot be read or used.
 */
export function createEdgeServer(options: EdgeServerOptions, handler: RequestListener): EdgeServer {
  const { logger, tls } = options
  const timeouts = {
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    // node checks both timeouts on this period, 30 s by default: shorter, so that short timeouts hold.
    connectionsCheckingInterval: Math.min(1_000, Math.ceil(options.headersTimeoutMs / 4)),
  }
  const context = tls && readTlsFiles(tls)
  const server = tls
    ? createHttpsServer({
        ...timeouts,
        ...context,
        // A client that does not finish the handshake is as slow as one that does not send headers.
        handshakeTimeout: options.headersTimeoutMs,
        ...(tls.clientCa !== undefined && { requestCert: true, rejectUnauthorized: true }),
      })
    : createHttpServer(timeouts)
  server.keepAliveTimeout = options.keepAliveTimeoutMs
  server.maxConnections = options.maxConnections
  server.on('request', handler)
  server.on('checkContinue', (req, res) => {
    if (!(Number(req.headers['content-length']) > options.maxBodyBytes)) res.writeContinue()
    handler(req, res)
  })

  let dropped = 0
  let droppedLoggedAt = -Infinity
  server.on('drop', () => {
    dropped++
    if (Date.now() - droppedLoggedAt < DROP_LOG_INTERVAL_MS) return
    logger.warn({ dropped, maxConnections: options.maxConnections }, 'connections refused: APUBI_MAX_CONNECTIONS reached')
    droppedLoggedAt = Date.now()
    dropped = 0
  })

  let expiresAt = context && certificateExpiry(context.cert)
  if (tls && context) {
    logger.info({ ...describeCertificate(context.cert), clientCertificates: tls.clientCa !== undefined }, 'serving HTTPS')
    server.on('tlsClientError', (e: NodeJS.ErrnoException, socket) => {
      logger.info({ client: socket.remoteAddress, reason: e.code ?? e.message }, 'TLS handshake refused')
    })
  }

  return {
    server,
    secure: tls !== undefined,
    reloadTls() {
      if (!tls) return false
      try {
        const context = readTlsFiles(tls)
        ;(server as HttpsServer).setSecureContext(context)
        expiresAt = certificateExpiry(context.cert)
        logger.info({ ...describeCertificate(context.cert), clientCertificates: tls.clientCa !== undefined }, 'TLS certificate reloaded')
        return true
      } catch (e) {
        logger.error({ reason: (e as Error).message }, 'TLS certificate reload failed; the previous certificate stays')
        return false
      }
    },
    certificateExpiresAt: () => expiresAt,
  }
}
