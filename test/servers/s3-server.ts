// An S3-compatible server for the tests, started by the tests themselves: s3rver in process, on an
// ephemeral port of 127.0.0.1, storing into a temporary directory.
import crypto, { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface S3Server {
  /** `http://127.0.0.1:<port>` (https with `tls`): path-style addressing only. */
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** A bucket made for this run, empty. */
  readonly bucket: string
  /** Where s3rver keeps the buckets. */
  readonly dir: string
  /** What s3rver reported so far, as `<event name> <key>`: `ObjectCreated:Post` is a completed multipart upload. */
  readonly events: readonly string[]
  close(): Promise<void>
}

export interface S3ServerOptions {
  /** Serve HTTPS with this certificate (see tls.ts). */
  readonly tls?: { readonly cert: string; readonly key: string }
}

/** The only account s3rver knows. It checks the key id, but not V4 signatures: any secret passes. */
const ACCESS_KEY_ID = 'S3RVER'
const SECRET_ACCESS_KEY = 'S3RVER'
// s3rver's continuation tokens are encrypted with "us-east-1" in them and refused for other regions.
const REGION = 'us-east-1'

interface S3rver {
  run(): Promise<{ port: number }>
  close(): Promise<void>
  on(event: 'event', listener: (event: { Records: Array<{ eventName: string; s3: { object: { key: string } } }> }) => void): void
}
type S3rverClass = new (options: Record<string, unknown>) => S3rver

// s3rver has no type declarations, and is CommonJS.
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass

/** s3rver with one fresh bucket named `apubi-<random>` (bucket names must be valid DNS names). */
export async function startS3rver(options: S3ServerOptions = {}): Promise<S3Server> {
  allowSingleDes()
  // The SDK's notice that it will need Node 22 from 2027 would open every test run's output.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true'
  const dir = await mkdtemp(join(tmpdir(), 'apubi-s3-'))
  const bucket = `apubi-${randomBytes(4).toString('hex')}`
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    // Path-style only: with vhost buckets, s3rver would read a bucket out of the Host header.
    vhostBuckets: false,
    configureBuckets: [{ name: bucket, configs: [] }],
    ...(options.tls && { cert: options.tls.cert, key: options.tls.key }),
  })
  const events: string[] = []
  server.on('event', ({ Records }) => events.push(...Records.map((r) => `${r.eventName} ${r.s3.object.key}`)))
  const { port } = await server.run()
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    bucket,
    dir,
    events,
    close: async () => {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 offers only
 * through its legacy provider: without this, every truncated listing answers 500. Two-key 3DES with
 * both keys equal computes exactly single DES, and OpenSSL 3 still has it. Only 'des' is rerouted.
 */
function allowSingleDes(): void {
  if (patched) return
  patched = true
  const { createCipheriv, createDecipheriv } = crypto
  const asEde = (key: crypto.CipherKey): Buffer => Buffer.concat([Buffer.from(key as Buffer), Buffer.from(key as Buffer)])
  crypto.createCipheriv = ((algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, opts?: never) =>
    algorithm === 'des' ? createCipheriv('des-ede-cbc', asEde(key), iv) : createCipheriv(algorithm, key, iv, opts)) as typeof crypto.createCipheriv
  crypto.createDecipheriv = ((algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, opts?: never) =>
    algorithm === 'des' ? createDecipheriv('des-ede-cbc', asEde(key), iv) : createDecipheriv(algorithm, key, iv, opts)) as typeof crypto.createDecipheriv
}
let patched = false
