import { Client } from 'basic-ftp'
import { randomFillSync } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { ApubiClient } from '../src/client/apubi-client.js'

/** What bench/ftp-server.ts prints once it listens. */
export interface FtpInfo {
  /** Which FTP server answers: vsftpd or ftp-srv. */
  readonly server: string
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
}

const MiB = 1 << 20
const POLL_MS = 100

/** `ftp://user:password@host:port/<path>`; `path` must need no encoding. */
export function ftpUrl(ftp: FtpInfo, path: string): string {
  return `ftp://${encodeURIComponent(ftp.user)}:${encodeURIComponent(ftp.password)}@${ftp.host}:${ftp.port}/${path}`
}

/**
 * Writes `mib` MiB of random-ish data, streaming, so the bench's own memory stays small. Each MiB is a
 * view at a different offset of one 17 MiB random pool: incompressible, no two chunks alike, and far
 * quicker than fresh random bytes. The pool is never written again, so queued views stay valid.
 */
export async function writeRandomFile(path: string, mib: number): Promise<void> {
  const pool = randomFillSync(Buffer.allocUnsafe(17 * MiB))
  function* chunks() {
    for (let i = 0; i < mib; i++) {
      const offset = (i * 65_537) % (16 * MiB)
      yield pool.subarray(offset, offset + MiB)
    }
  }
  // flush: on disk before the first measured copy, so its write-back does not slow that one alone.
  await pipeline(Readable.from(chunks()), createWriteStream(path, { flush: true }))
}

/**
 * The reference: a plain stream copy with basic-ftp, connect and login included as they are in ours.
 * @returns seconds
 */
export async function referenceUpload(ftp: FtpInfo, file: string, name: string): Promise<number> {
  const client = new Client()
  const started = performance.now()
  try {
    await client.access({ host: ftp.host, port: ftp.port, user: ftp.user, password: ftp.password })
    await client.uploadFrom(createReadStream(file), name)
  } finally {
    client.close()
  }
  return (performance.now() - started) / 1000
}

/**
 * Ours, as the WFM sees it: from sending LoadAsset until GetTaskStatus, polled every 100 ms, says SUCCESS.
 * @returns seconds
 * @throws when the task ends FAILED or is still running after `timeoutMs`
 */
export async function publishThroughServer(apubiUrl: string, file: string, destination: string, timeoutMs: number): Promise<number> {
  const client = new ApubiClient(apubiUrl)
  const started = performance.now()
  const taskId = await client.loadAsset(pathToFileURL(file).href, destination)
  for (;;) {
    const { status } = await client.getTaskStatus(taskId)
    if (status === 'SUCCESS') return (performance.now() - started) / 1000
    if (status === 'FAILED') throw new Error(`the publishing task ${taskId} ended FAILED`)
    if (performance.now() - started > timeoutMs) throw new Error(`the publishing task ${taskId} still runs after ${timeoutMs} ms`)
    await sleep(POLL_MS)
  }
}

/** @throws unless `path` holds exactly `bytes` bytes */
export async function verifySize(path: string, bytes: number): Promise<void> {
  const { size } = await stat(path)
  if (size !== bytes) throw new Error(`${path}: ${size} bytes uploaded, ${bytes} expected`)
}
