import { Transform, type TransformCallback } from 'node:stream'
import type { Job } from './job.js'

/** Reported at most this often while bytes flow; file completions are always reported. */
const REPORT_EVERY_MS = 250

/** Sums bytes and files of all the files of one task and reports them to the job. */
export class ProgressCounter {
  private bytesDone = 0
  private filesDone = 0
  private lastReport = 0
  constructor(
    private readonly job: Job,
    private readonly bytesTotal: number,
    private readonly filesTotal: number,
  ) {
    this.report(true)
  }

  /** A stream counting what flows through it; `rollback` takes its bytes back when the file fails. */
  counter(): ByteCounter {
    return new ByteCounter((n) => this.add(n))
  }

  add(bytes: number): void {
    this.bytesDone += bytes
    this.report(false)
  }

  fileDone(): void {
    this.filesDone++
    this.report(true)
  }

  private report(force: boolean): void {
    const now = Date.now()
    if (!force && now - this.lastReport < REPORT_EVERY_MS) return
    this.lastReport = now
    const { bytesDone, bytesTotal, filesDone, filesTotal } = this
    this.job.onProgress({ bytesDone, bytesTotal, filesDone, filesTotal })
  }
}

export class ByteCounter extends Transform {
  bytes = 0
  constructor(private readonly onBytes: (n: number) => void) {
    super()
  }

  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.onBytes(chunk.length)
    done(null, chunk)
  }

  /** A failed file's bytes no longer count as done. */
  rollback(): void {
    this.onBytes(-this.bytes)
    this.bytes = 0
  }
}
