import { isIP } from 'node:net'
import { z } from 'zod'
import { PERCENT_ENCODE_HELP, unambiguousAuthority } from './url-authority.js'
import { parseTimetable } from './timetable.js'

/**
 * Every setting, described once: its environment variable, its type and default (with the unit in
 * the name), and the help that docs/configuration.md's table repeats. The config file (APUBI_CONFIG, JSON)
 * uses the same keys as `settings`.
 */
const positiveInt = z.coerce.number().int().positive()
const list = z.preprocess((v) => (typeof v === 'string' ? v.split(':').filter(Boolean) : v), z.array(z.string()))
const commaList = z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((e) => e.trim()).filter(Boolean) : v), z.array(z.string()))

function isAddressOrRange(entry: string): boolean {
  const [address = '', bits, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
}

/** A host of the location rules: a name, `*.` and a name, an address or a CIDR range (IPv6 also in brackets). */
function isHostPattern(entry: string): boolean {
  const unbracketed = entry.replace(/^\[([^\]]*)\](\/\d+)?$/, '$1$2')
  if (/^[\d.]+(\/\d+)?$/.test(entry) || unbracketed.includes(':')) return isAddressOrRange(unbracketed)
  return z.hostname().safeParse(entry.replace(/^\*\./, '')).success
}
const hostPattern = z.string().refine(isHostPattern, 'must be a host name, *.domain, an IP address or a CIDR range')
const portOrRange = z.union([
  z.number().int().min(1).max(65535),
  z.string().regex(/^\d{1,5}-\d{1,5}$/).refine((r) => {
    const [low, high] = r.split('-').map(Number) as [number, number]
    return low >= 1 && low <= high && high <= 65535
  }, 'must be a port range low-high within 1-65535'),
])
const locationRule = z
  .object({
    schemes: z.array(z.enum(['ftp', 'ftps', 'ftpes', 'sftp', 'http', 'https', 's3'])).min(1).optional(),
    hosts: z.array(hostPattern).min(1).optional(),
    ports: z.array(portOrRange).min(1).optional(),
    paths: z.array(z.string().startsWith('/')).min(1).optional(),
  })
  .strict()

/** An absolute URL naming a folder: what follows it in a target is appended as it is. */
const baseUrl = z.string().regex(/^[a-z][a-z0-9+.-]*:\/\/.*\/$/i, 'must be an absolute URL ending with /')

/** An rclone --bwlimit value, checked here so that a wrong one stops start-up with the reason. */
const timetable = z.string().superRefine((text, context) => {
  try {
    parseTimetable(text)
  } catch (e) {
    context.addIssue({ code: 'custom', message: (e as Error).message })
  }
})
const httpUrl = z.string().regex(/^https?:\/\/[^/]/i, 'must be an http:// or https:// URL')
/** A destination base and the cache or CDN that serves it (see src/invalidate/invalidator.ts). */
const invalidationBase = z
  .object({
    base: baseUrl,
    publicUrl: httpUrl,
    onFailure: z.enum(['fail', 'warn']).default('fail'),
    provider: z.discriminatedUnion('type', [
      z.object({ type: z.literal('http'), method: z.enum(['PURGE', 'BAN']).default('PURGE'), caches: z.array(httpUrl).min(1).optional(), keyHeader: z.object({ name: z.string().regex(/^[A-Za-z0-9-]+$/), token: z.string() }).strict().optional() }).strict(),
      z.object({ type: z.literal('cloudfront'), distributionId: z.string().min(1), accessKeyId: z.string().optional(), secretAccessKey: z.string().optional(), region: z.string().default('us-east-1'), endpoint: httpUrl.optional() }).strict(),
      z.object({ type: z.literal('akamai'), host: httpUrl, clientToken: z.string().min(1), clientSecret: z.string().min(1), accessToken: z.string().min(1), network: z.enum(['production', 'staging']).default('production'), action: z.enum(['invalidate', 'delete']).default('invalidate') }).strict(),
    ]),
  })
  .strict()
/** A receiver of task notifications (see src/notify/). */
const webhook = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -'),
    url: httpUrl,
    secret: z.string().min(16, 'must be at least 16 characters (make one with: openssl rand -base64 32)'),
    events: z.array(z.enum(['start', 'retry', 'end'])).min(1).default(['end']),
  })
  .strict()

export const settings = {
  port: { env: 'APUBI_PORT', schema: z.coerce.number().int().min(0).max(65535).default(8080), help: 'TCP port of the SOAP endpoint' },
  host: { env: 'APUBI_HOST', schema: z.string().default('0.0.0.0'), help: 'Address to listen on' },
  dataDir: { env: 'APUBI_DATA_DIR', schema: z.string().default('./data'), help: 'Folder of the task database and of the default CDN folder' },
  databaseUrl: { env: 'APUBI_DATABASE_URL', schema: z.string().regex(/^postgres(?:ql)?:\/\//i, 'must be a postgres:// URL; the value is not shown').refine(unambiguousAuthority, PERCENT_ENCODE_HELP).optional(), help: 'postgres://user:password@host:5432/database: keep tasks in PostgreSQL, shared by every instance given the same URL (default: SQLite in the data dir, one instance)' },
  databaseWaitS: { env: 'APUBI_DATABASE_WAIT_S', schema: z.coerce.number().int().min(0).default(60), help: 'At start, how long to wait for a PostgreSQL that refuses or times out connections (it often starts after us), retrying with capped backoff; /healthz answers meanwhile and /readyz says 503; past it the server exits non-zero, seconds' },
  databasePoolSize: { env: 'APUBI_DATABASE_POOL_SIZE', schema: z.coerce.number().int().min(2).default(10), help: 'Connections each instance keeps open to PostgreSQL for its tasks (at least 2; one more holds its host connection slots)' },
  secretKey: { env: 'APUBI_SECRET_KEY', schema: z.string().trim().regex(/^(?:[0-9a-f]{64}|[A-Za-z0-9+/_-]{43}=?)$/i, 'must be 32 bytes as 64 hex digits or as base64 (openssl rand -base64 32); the value is not shown').optional(), help: 'Key that seals (AES-256-GCM) the credentials of task URLs in the database: 32 bytes as hex or base64 (default: none, stored unsealed in the owner-only file)' },
  secretKeyFile: { env: 'APUBI_SECRET_KEY_FILE', schema: z.string().optional(), help: 'File holding the key, instead of APUBI_SECRET_KEY (for secret stores that mount files)' },
  fileRoots: { env: 'APUBI_FILE_ROOTS', schema: list.optional(), help: 'Colon-separated absolute folders that file:// sources and destinations may touch (default: the data dir)' },
  cdnBase: { env: 'APUBI_CDN_BASE', schema: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\//i, 'must be an absolute URL').refine(unambiguousAuthority, PERCENT_ENCODE_HELP).optional(), help: 'Base URL a relative DestinationAsset resolves against (default: file://<data dir>/cdn/); may hold credentials' },
  soapPath: { env: 'APUBI_SOAP_PATH', schema: z.string().startsWith('/').default('/apubi'), help: 'HTTP path of the SOAP endpoint' },
  publicUrl: { env: 'APUBI_PUBLIC_URL', schema: z.string().url().optional(), help: 'Endpoint address written into the WSDL (default: http://<host>:<port><path>)' },
  logLevel: { env: 'APUBI_LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), help: 'Log level' },
  logFormat: { env: 'APUBI_LOG_FORMAT', schema: z.enum(['auto', 'json', 'pretty']).default('auto'), help: 'json: one JSON object per line; pretty: one readable line per entry; auto: pretty when stdout is a terminal, else json' },
  adminToken: { env: 'APUBI_ADMIN_TOKEN', schema: z.string().min(16, 'must be at least 16 characters (make one with: openssl rand -hex 32)').optional(), help: 'Bearer token of the admin API, dashboard and /metrics, with the operator role (default: none; then they answer loopback clients only)' },
  workers: { env: 'APUBI_WORKERS', schema: positiveInt.default(4), help: 'Tasks worked on at once' },
  parallelFiles: { env: 'APUBI_PARALLEL_FILES', schema: positiveInt.default(4), help: 'Files of one directory copied at once to start with; more while round trips limit the copy, up to the per-host connection cap' },
  connectionsPerHost: { env: 'APUBI_CONNECTIONS_PER_HOST', schema: z.coerce.number().int().min(2).default(8), help: 'Connections open to one host, across all tasks (at least 2: a copy between two paths of one host holds two)' },
  timeoutMs: { env: 'APUBI_TIMEOUT_MS', schema: positiveInt.default(30_000), help: 'Connect and idle timeout of network storage, ms' },
  taskTimeoutMs: { env: 'APUBI_TASK_TIMEOUT_MS', schema: positiveInt.default(6 * 3_600_000), help: 'Longest one attempt of a task may run before it ends FAILED (ERR_TIMEOUT), ms' },
  maxAttempts: { env: 'APUBI_MAX_ATTEMPTS', schema: positiveInt.default(5), help: 'Attempts of a task before it ends FAILED' },
  retryBaseMs: { env: 'APUBI_RETRY_BASE_MS', schema: positiveInt.default(2_000), help: 'First retry delay, doubled each attempt (with jitter), ms' },
  retryMaxMs: { env: 'APUBI_RETRY_MAX_MS', schema: positiveInt.default(300_000), help: 'Longest retry delay, ms' },
  leaseMs: { env: 'APUBI_LEASE_MS', schema: positiveInt.default(30_000), help: 'How long a claimed task stays ours without renewal; a crashed worker\'s tasks are taken back after it, ms' },
  pollMs: { env: 'APUBI_POLL_MS', schema: positiveInt.default(500), help: 'How often idle workers look for due tasks, ms' },
  shutdownGraceMs: { env: 'APUBI_SHUTDOWN_GRACE_MS', schema: z.coerce.number().int().min(0).default(25_000), help: 'On SIGTERM, how long running transfers may finish before they are released, ms' },
  retentionDays: { env: 'APUBI_RETENTION_DAYS', schema: z.coerce.number().positive().default(7), help: 'Days a finished task stays queryable' },
  maxBodyBytes: { env: 'APUBI_MAX_BODY_BYTES', schema: positiveInt.default(1 << 20), help: 'Largest SOAP request body, bytes, as received and once gzip- or deflate-decoded' },
  maxXmlDepth: { env: 'APUBI_MAX_XML_DEPTH', schema: positiveInt.default(32), help: 'Deepest nesting of elements in a SOAP request (the Envelope is level 1)' },
  maxXmlElements: { env: 'APUBI_MAX_XML_ELEMENTS', schema: positiveInt.default(2_000), help: 'Most elements in a SOAP request' },
  maxXmlAttributes: { env: 'APUBI_MAX_XML_ATTRIBUTES', schema: positiveInt.default(64), help: 'Most attributes (namespace declarations included) on one element of a SOAP request' },
  maxXmlText: { env: 'APUBI_MAX_XML_TEXT', schema: positiveInt.default(64 * 1024), help: 'Longest text of one element of a SOAP request, characters' },
  headersTimeoutMs: { env: 'APUBI_HEADERS_TIMEOUT_MS', schema: positiveInt.default(10_000), help: 'Time a client has to send a request\'s headers (and, over HTTPS, to finish the TLS handshake) before the connection is closed, ms' },
  requestTimeoutMs: { env: 'APUBI_REQUEST_TIMEOUT_MS', schema: positiveInt.default(30_000), help: 'Time a client has to send a whole request, body included, before the connection is closed; at least APUBI_HEADERS_TIMEOUT_MS, ms' },
  keepAliveTimeoutMs: { env: 'APUBI_KEEP_ALIVE_TIMEOUT_MS', schema: positiveInt.default(5_000), help: 'How long an idle keep-alive connection stays open, ms' },
  maxConnections: { env: 'APUBI_MAX_CONNECTIONS', schema: positiveInt.default(128), help: 'Client connections open at once; more are closed as they arrive' },
  tlsCert: { env: 'APUBI_TLS_CERT', schema: z.string().optional(), help: 'PEM certificate (chain) file: with APUBI_TLS_KEY, the endpoint serves HTTPS only; re-read on SIGHUP' },
  tlsKey: { env: 'APUBI_TLS_KEY', schema: z.string().optional(), help: 'PEM private key file of APUBI_TLS_CERT; re-read on SIGHUP' },
  tlsClientCa: { env: 'APUBI_TLS_CLIENT_CA', schema: z.string().optional(), help: 'PEM file of the CAs whose client certificates are accepted: with it, a client without such a certificate is refused at the TLS handshake (mTLS); re-read on SIGHUP' },
  soapUser: { env: 'APUBI_SOAP_USER', schema: z.string().optional(), help: 'With APUBI_SOAP_PASSWORD: the user every SOAP request must prove, by HTTP Basic or a WS-Security UsernameToken (default: no authentication)' },
  soapPassword: { env: 'APUBI_SOAP_PASSWORD', schema: z.string().optional(), help: 'The password of APUBI_SOAP_USER' },
  authWindowS: { env: 'APUBI_AUTH_WINDOW_S', schema: positiveInt.default(300), help: 'How far a WS-Security PasswordDigest\'s Created may be from our clock, and how long its nonce is remembered against replay, seconds' },
  allowedClients: { env: 'APUBI_ALLOWED_CLIENTS', schema: commaList.pipe(z.array(z.string().refine(isAddressOrRange, 'must be an IP address or a CIDR range'))).default([]), help: 'Comma-separated client addresses and CIDR ranges allowed to call the SOAP endpoint (default: any)' },
  checksums: { env: 'APUBI_CHECKSUMS', schema: z.preprocess((v) => (v === 'none' ? [] : typeof v === 'string' ? v.split(',').map((a) => a.trim()).filter(Boolean) : v), z.array(z.enum(['md5', 'sha256']))).default(['md5', 'sha256']), help: 'Digests computed while streaming and checked where the destination reports them: md5,sha256, one of them, or none (size only)' },
  manifestExtensions: { env: 'APUBI_MANIFEST_EXTENSIONS', schema: z.preprocess((v) => (v === 'none' ? [] : typeof v === 'string' ? v.split(',').map((e) => e.trim().replace(/^\./, '').toLowerCase()).filter(Boolean) : v), z.array(z.string().regex(/^[a-z0-9]+$/, 'must be file extensions such as m3u8,mpd'))).default(['m3u8', 'mpd']), help: 'Comma-separated extensions of the files read as HLS or DASH manifests (confirmed by their content): published after every file they reference and read back, purged first; none: no such ordering' },
  caFile: { env: 'APUBI_CA_FILE', schema: z.string().optional(), help: 'PEM file of CA certificates trusted for FTPS, HTTPS and S3, besides the system ones' },
  sshKnownHosts: { env: 'APUBI_SSH_KNOWN_HOSTS', schema: z.string().optional(), help: 'OpenSSH known_hosts file of the SFTP servers we trust (default: <data dir>/known_hosts)' },
  sshHostKeyPolicy: { env: 'APUBI_SSH_HOST_KEY_POLICY', schema: z.enum(['strict', 'accept-new']).default('strict'), help: 'strict: refuse an SFTP host not in known_hosts; accept-new: trust a first-seen host key, record it, log a warning' },
  sshPrivateKey: { env: 'APUBI_SSH_PRIVATE_KEY', schema: z.string().optional(), help: 'Private key file for SFTP logins that carry no password' },
  s3Endpoint: { env: 'APUBI_S3_ENDPOINT', schema: z.string().url().optional(), help: 'Endpoint of an S3-compatible store (MinIO, Ceph, R2, Wasabi); default: AWS' },
  s3Region: { env: 'APUBI_S3_REGION', schema: z.string().optional(), help: 'S3 region (default: AWS_REGION, else us-east-1)' },
  s3ForcePathStyle: { env: 'APUBI_S3_FORCE_PATH_STYLE', schema: z.stringbool().optional(), help: 'Path-style bucket addressing (default: on when an endpoint is set)' },
  s3Buckets: { env: null, schema: z.record(z.string(), z.object({ endpoint: z.string().url().optional(), region: z.string().optional(), forcePathStyle: z.boolean().optional(), accessKeyId: z.string().optional(), secretAccessKey: z.string().optional() }).strict()).default({}), help: 'Per bucket: endpoint, region, forcePathStyle, accessKeyId, secretAccessKey (file only)' },
  allowedHosts: { env: 'APUBI_ALLOWED_HOSTS', schema: commaList.pipe(z.array(hostPattern)).default([]), help: 'Comma-separated hosts (names, *.domain, addresses, CIDR ranges) that sources and destinations may name; once set, no other host is allowed (default: any, see the location policy)' },
  deniedHosts: { env: 'APUBI_DENIED_HOSTS', schema: commaList.pipe(z.array(hostPattern)).default([]), help: 'Comma-separated hosts (names, *.domain, addresses, CIDR ranges) that sources and destinations may not name or resolve to; wins over every allow' },
  locationRules: { env: null, schema: z.object({ allow: z.array(locationRule).default([]), deny: z.array(locationRule).default([]) }).strict().default({ allow: [], deny: [] }), help: 'Allow and deny rules on scheme, host, port and path prefix of network sources and destinations (file only)' },
  credentials: { env: null, schema: z.array(z.object({ url: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\/[^/@]+\/?$/i, 'must be scheme://host[:port]'), user: z.string(), password: z.string().optional(), privateKeyFile: z.string().optional() }).strict()).default([]), help: 'Per host: user and password or private key, used when a URL carries none (file only)' },
  bandwidthLimit: { env: 'APUBI_BANDWIDTH_LIMIT', schema: timetable.optional(), help: 'Cap on the bytes per second all tasks together write, in rclone\'s --bwlimit form: a rate (10M, 512K, off) or a timetable ("08:00,10M 19:00,2M 23:00,off", days as Mon-08:00,…); binary units, no suffix is KiB (default: none)' },
  bandwidthHosts: { env: null, schema: z.record(z.string().refine((h) => isIP(h) !== 0 || z.hostname().safeParse(h).success, 'must be a host name or an IP address'), timetable).default({}), help: 'Per origin host (for s3, the bucket): a cap in the same form, e.g. { "origin-a.example.net": "08:00,4M 20:00,off" } (file only)' },
  mirrors: { env: null, schema: z.array(z.object({ base: baseUrl, origins: z.array(baseUrl).min(2, 'name at least two origins') }).strict()).default([]), help: 'Destination bases published to several origins: { "base": "sftp://origin-a/cdn/", "origins": ["sftp://origin-a/cdn/", "s3://backup-bucket/cdn/"] }; a task under the base is SUCCESS only once every origin has it (file only)' },
  adminTokens: { env: null, schema: z.array(z.object({ token: z.string().min(16, 'must be at least 16 characters'), role: z.enum(['read-only', 'operator']) }).strict()).default([]), help: 'More admin tokens, each { "token": "…", "role": "read-only" | "operator" } (file only)' },
  invalidation: { env: null, schema: z.array(invalidationBase).default([]), help: 'Per destination base: the cache or CDN to tell after a load replaced files or a purge, { "base", "publicUrl", "onFailure": "fail" | "warn", "provider": { "type": "http" | "cloudfront" | "akamai", … } } (file only)' },
  webhooks: { env: null, schema: z.array(webhook).refine((hooks) => new Set(hooks.map((h) => h.name)).size === hooks.length, 'names must differ').default([]), help: 'Receivers of signed task notifications, { "name", "url", "secret", "events": ["start", "retry", "end"] } (file only)' },
  notifyMaxAttempts: { env: 'APUBI_NOTIFY_MAX_ATTEMPTS', schema: positiveInt.default(10), help: 'Attempts to deliver one notification (retried after APUBI_RETRY_BASE_MS, doubling up to APUBI_RETRY_MAX_MS) before it is given up; an operator can send it again' },
} as const


export type Settings = typeof settings
export type ConfigInput = { [K in keyof Settings]: z.input<Settings[K]['schema']> }
type Parsed = { [K in keyof Settings]: z.output<Settings[K]['schema']> }

/** The configuration every module receives: validated, defaults filled, paths absolute, frozen. */
export interface Config extends Omit<Parsed, 'fileRoots' | 'cdnBase' | 'publicUrl' | 'sshKnownHosts' | 's3Region'> {
  readonly fileRoots: readonly string[]
  readonly cdnBase: string
  readonly publicUrl: string
  readonly databaseFile: string
  readonly sshKnownHosts: string
  readonly s3Region: string
}
