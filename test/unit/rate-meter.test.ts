// The speed and ETA operators watch: steady under a bursty origin, 0 once a transfer stalls.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RateMeter } from '../../src/tasks/throughput.js'

const MiB = 1 << 20
const TOTAL = 400 * MiB

/** An origin that sends 2 MiB in a burst every 2 s (1 MiB/s on average), reported every 250 ms. */
function burstyMeter(untilMs: number): RateMeter {
  const meter = new RateMeter()
  for (let at = 0; at <= untilMs; at += 250) {
    const bursts = Math.floor(at / 2_000) + (at % 2_000 >= 250 ? 1 : 0)
    meter.add(at, { bytesDone: bursts * 2 * MiB, bytesTotal: TOTAL, filesDone: 0, filesTotal: 1 })
  }
  return meter
}

describe('RateMeter', () => {
  it('keeps the ETA of a bursty transfer steady: within 10 % over 10 s of readings', () => {
    const etas: number[] = []
    for (let at = 30_000; at <= 40_000; at += 250) etas.push(burstyMeter(at).read(at)!.etaSeconds!)
    const [low, high] = [Math.min(...etas), Math.max(...etas)]
    assert.ok(high / low < 1.1, `ETA swung from ${low} s to ${high} s`)
    const rate = burstyMeter(40_000).read(40_000)!.bytesPerSecond
    assert.ok(rate > 0.9 * MiB && rate < 1.15 * MiB, `rate ${rate} B/s for 1 MiB/s`)
  })

  it('reads 0 and no ETA once no byte moved for 5 s, and nothing before the first report', () => {
    assert.equal(new RateMeter().read(0), undefined)
    const meter = new RateMeter()
    meter.add(0, { bytesDone: 0, bytesTotal: TOTAL, filesDone: 0, filesTotal: 1 })
    meter.add(1_000, { bytesDone: MiB, bytesTotal: TOTAL, filesDone: 0, filesTotal: 1 })
    assert.ok(meter.read(1_000)!.bytesPerSecond > 0)
    for (let at = 2_000; at <= 7_000; at += 1_000) meter.add(at, { bytesDone: MiB, bytesTotal: TOTAL, filesDone: 0, filesTotal: 1 })
    const stalled = meter.read(7_000)!
    assert.equal(stalled.bytesPerSecond, 0)
    assert.equal(stalled.etaSeconds, undefined)
  })

  it('rounds a long ETA to what it can tell: 10 s past 2 minutes, a minute past 10', () => {
    const meter = new RateMeter()
    meter.add(0, { bytesDone: 0, bytesTotal: TOTAL, filesDone: 0, filesTotal: 1 })
    meter.add(1_000, { bytesDone: 100_000, bytesTotal: TOTAL, filesDone: 0, filesTotal: 1 })
    assert.equal(meter.read(1_000)!.etaSeconds! % 60, 0)
    const near = new RateMeter()
    near.add(0, { bytesDone: 0, bytesTotal: 300 * MiB, filesDone: 0, filesTotal: 1 })
    near.add(1_000, { bytesDone: MiB, bytesTotal: 300 * MiB, filesDone: 0, filesTotal: 1 })
    assert.equal(near.read(1_000)!.etaSeconds, 300)
  })
})
