import { z } from 'zod'

/**
 * Every setting, described once: its environment variable, its type and default (with the unit in
 * the name), and the help that the README's configuration table repeats. The config file (APUBI_CONFIG, JSON)
 * uses the same keys as `settings`.
 */
const positiveInt = z.coerce.number().int().positive()
const list = z.preprocess((v) => (typeof v === 'string' ? v.split(':').filter(Boolean) : v), z.array(z.string()))

export const settings = {
  port: { env: 'APUBI_PORT', schema: z.coerce.number().int().min(0).max(65535).default(8080), help: 'TCP port of the SOAP endpoint' },
  host: { env: 'APUBI_HOST', schema: z.string().default('0.0.0.0'), help: 'Address to listen on' },
  dataDir: { env: 'APUBI_DATA_DIR', schema: z.string().default('./data'), help: 'Folder of the task database and of the default CDN folder' },
  fileRoots: { env: 'APUBI_FILE_ROOTS', schema: list.optional(), help: 'Colon-separated absolute folders that file:// sources and destinations may touch (default: the data dir)' },
  cdnBase: { env: 'APUBI_CDN_BASE', schema: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\//i, 'must be an absolute URL').optional(), help: 'Base URL a relative DestinationAsset resolves against (default: file://<data dir>/cdn/); may hold credentials' },
  soapPath: { env: 'APUBI_SOAP_PATH', schema: z.string().startsWith('/').default('/apubi'), help: 'HTTP path of the SOAP endpoint' },
  publicUrl: { env: 'APUBI_PUBLIC_URL', schema: z.string().url().optional(), help: 'Endpoint address written into the WSDL (default: http://<host>:<port><path>)' },
  logLevel: { env: 'APUBI_LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), help: 'Log level' },
  workers: { env: 'APUBI_WORKERS', schema: positiveInt.default(4), help: 'Tasks worked on at once' },
  parallelFiles: { env: 'APUBI_PARALLEL_FILES', schema: positiveInt.default(4), help: 'Files of one directory copied at once' },
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
  maxBodyBytes: { env: 'APUBI_MAX_BODY_BYTES', schema: positiveInt.default(1 << 20), help: 'Largest SOAP request body, bytes' },
  checksums: { env: 'APUBI_CHECKSUMS', schema: z.preprocess((v) => (v === 'none' ? [] : typeof v === 'string' ? v.split(',').map((a) => a.trim()).filter(Boolean) : v), z.array(z.enum(['md5', 'sha256']))).default(['md5', 'sha256']), help: 'Digests computed while streaming and checked where the destination reports them: md5,sha256, one of them, or none (size only)' },
  caFile: { env: 'APUBI_CA_FILE', schema: z.string().optional(), help: 'PEM file of CA certificates trusted for FTPS, HTTPS and S3, besides the system ones' },
  sshKnownHosts: { env: 'APUBI_SSH_KNOWN_HOSTS', schema: z.string().optional(), help: 'OpenSSH known_hosts file of the SFTP servers we trust (default: <data dir>/known_hosts)' },
  sshHostKeyPolicy: { env: 'APUBI_SSH_HOST_KEY_POLICY', schema: z.enum(['strict', 'accept-new']).default('strict'), help: 'strict: refuse an SFTP host not in known_hosts; accept-new: trust a first-seen host key, record it, log a warning' },
  sshPrivateKey: { env: 'APUBI_SSH_PRIVATE_KEY', schema: z.string().optional(), help: 'Private key file for SFTP logins that carry no password' },
  s3Endpoint: { env: 'APUBI_S3_ENDPOINT', schema: z.string().url().optional(), help: 'Endpoint of an S3-compatible store (MinIO, Ceph, R2, Wasabi); default: AWS' },
  s3Region: { env: 'APUBI_S3_REGION', schema: z.string().optional(), help: 'S3 region (default: AWS_REGION, else us-east-1)' },
  s3ForcePathStyle: { env: 'APUBI_S3_FORCE_PATH_STYLE', schema: z.stringbool().optional(), help: 'Path-style bucket addressing (default: on when an endpoint is set)' },
  s3Buckets: { env: null, schema: z.record(z.string(), z.object({ endpoint: z.string().url().optional(), region: z.string().optional(), forcePathStyle: z.boolean().optional(), accessKeyId: z.string().optional(), secretAccessKey: z.string().optional() }).strict()).default({}), help: 'Per bucket: endpoint, region, forcePathStyle, accessKeyId, secretAccessKey (file only)' },
  credentials: { env: null, schema: z.array(z.object({ url: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\/[^/@]+\/?$/i, 'must be scheme://host[:port]'), user: z.string(), password: z.string().optional(), privateKeyFile: z.string().optional() }).strict()).default([]), help: 'Per host: user and password or private key, used when a URL carries none (file only)' },
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
