// s3rver for the transport bench, in its own process: our server and rclone both read from it over
// loopback, and its work (Koa, one file per object) does not land on the measuring process's event loop.
// It keeps its objects in a temporary folder of its own, removed when the parent stops it or goes away.
import { startS3rver } from '../test/servers/s3-server.js'

/** What bench/s3-server.ts prints once it listens. */
export interface S3Info {
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly bucket: string
}

const s3 = await startS3rver()
const info: S3Info = { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: s3.bucket }
console.log(JSON.stringify(info))
// Not exitWithParent: the store holds a copy of every test object, and close() removes it.
let closing: Promise<void> | undefined
const close = () => void (closing ??= s3.close().finally(() => process.exit(0)))
process.stdin.on('end', close).resume()
process.on('SIGTERM', close)
process.on('SIGINT', close)
