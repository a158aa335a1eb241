import { isIP } from 'node:net'
import { rootCertificates, type ConnectionOptions } from 'node:tls'
import { Client, FTPError } from 'basic-ftp'
import { checkedAddress, unbracketed } from '../checked-lookup.js'
import { keepTlsDataSocketsOpen, type Connection } from './protocol.js'
import type { BackendContext, Endpoint } from '../types.js'

// Opening a logged-in control connection, in the clear or with TLS (explicit or implicit), and
// telling apart the TLS failures that no retry will cure.

/** `scheme://host:port`: the key of the host's connection slots, and how messages name the server. */
export function origin(endpoint: Endpoint): string {
  const host = endpoint.host.includes(':') && !endpoint.host.startsWith('[') ? `[${endpoint.host}]` : endpoint.host
  return `${endpoint.scheme}://${host}:${endpoint.port}`
}

/**
 * What TLS checks, for the control connection and (basic-ftp reuses these) every data connection.
 * The socket goes to `address`, the one the policy checked; the certificate is checked against the
 * URL's host name (`servername`), or against the address where the URL names one. `host` must be
 * set: without it a data connection would check the certificate against "localhost".
 */
function tlsOptions(endpoint: Endpoint, address: string, context: BackendContext): ConnectionOptions {
  const name = unbracketed(endpoint.host)
  return {
    host: address,
    ...(isIP(name) === 0 && { servername: name }),
    // `ca` replaces Node's bundle rather than adding to it, so the bundle goes in too.
    ...(context.tlsCa && { ca: [...rootCertificates, context.tlsCa] }),
  }
}

/** The server answered AUTH TLS with a refusal: it offers no TLS, and the URL demands it. */
export class TlsRefusedError extends Error {
  override name = 'TlsRefusedError'
}

/** Connects, with TLS as the scheme says, and logs in: basic-ftp's `access`, with AUTH TLS told apart. */
async function login(client: Client, endpoint: Endpoint, context: BackendContext, signal: AbortSignal): Promise<void> {
  const { scheme, host, port } = endpoint
  // Resolved once and checked by the location policy; data connections go to the same address.
  const address = await checkedAddress(context, { scheme, host, port })
  signal.throwIfAborted()
  if (scheme === 'ftps') await client.connectImplicitTLS(address, port, tlsOptions(endpoint, address, context))
  else await client.connect(address, port)
  if (scheme === 'ftpes') {
    // basic-ftp's upgrade awaits the handshake's success or error, and a socket closed under it (by
    // an abort, or by basic-ftp's own timeout when the server stalls) ends with neither.
    const upgrade = client.useTLS(tlsOptions(endpoint, address, context)).catch((e: unknown) => {
      throw e instanceof FTPError ? new TlsRefusedError(`the server refuses TLS: ${e.message}`, { cause: e }) : e
    })
    await settledBefore(upgrade, AbortSignal.any([signal, AbortSignal.timeout(context.timeoutMs)]))
  }
  // Before USER, so that a name or password in UTF-8 arrives as such where the server allows it.
  await client.sendIgnoringError('OPTS UTF8 ON')
  await client.login(endpoint.user, endpoint.password)
  // Binary mode, and with TLS "PBSZ 0" and "PROT P": data connections are encrypted too.
  await client.useDefaultSettings()
  keepTlsDataSocketsOpen(client.ftp)
}

/** `work`, or the abort reason as soon as `signal` aborts, whether or not `work` ever settles. */
function settledBefore<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const abort = (): void => reject(signal.reason)
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
    if (signal.aborted) abort()
    else signal.addEventListener('abort', abort, { once: true })
  })
}

/** Opens a control connection in a free host slot, logs in and learns the login directory. */
export async function connect(endpoint: Endpoint, context: BackendContext, signal: AbortSignal): Promise<Connection> {
  const release = await context.hosts.acquire(origin(endpoint), signal)
  // Data connections go to the control connection's address, never to the one a PASV reply names:
  // a server could otherwise send us to any host (the FTP bounce, and a way around the policy).
  const client = new Client(context.timeoutMs, { allowSeparateTransferHost: false })
  // basic-ftp cannot cancel a command: closing the client is what stops it.
  const stop = (): void => client.close()
  signal.addEventListener('abort', stop, { once: true })
  try {
    await login(client, endpoint, context, signal)
    const features = new Map([...(await client.features())].map(([name, value]) => [name.toUpperCase(), value]))
    return { client, release, home: await client.pwd(), mlst: features.has('MLST'), features }
  } catch (e) {
    client.close()
    release()
    throw e
  } finally {
    signal.removeEventListener('abort', stop)
  }
}

