// Bandwidth caps without a server: rclone's --bwlimit timetables (what each entry means, and a clear
// error for each kind of mistake, at config loading too), and the fair bucket's sharing between tasks
// (in rates granted, measured on a clock the test moves), and the caps taking the run-time timetables
// that the cluster keeps in its database.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig, parseTimetable } from '../../src/config/index.js'
import { Bandwidth } from '../../src/transfer/index.js'
import { FairBucket } from '../../src/transfer/fair-bucket.js'
import { thrownMessage } from './thrown.js'

const MiB = 1024 * 1024
/** A local time on a known weekday: 2026-12-07 is a Monday. */
/** The message of the Error `run` throws. */
function errorOf(run: () => unknown): string {
  try {
    run()
  } catch (e) {
    return (e as Error).message
  }
  assert.fail('nothing was thrown')
}

const at = (day: number, hh: number, mm: number) => new Date(2026, 11, 7 + day, hh, mm, 30)

describe('bandwidth timetable (rclone --bwlimit form)', () => {
  const table: Array<[string, Date, number | undefined]> = [
    ['10M', at(0, 12, 0), 10 * MiB],
    ['512K', at(0, 12, 0), 512 * 1024],
    ['512', at(0, 12, 0), 512 * 1024], // rclone: no suffix is KiB
    ['1.5G', at(0, 12, 0), 1.5 * 1024 * MiB],
    ['100B', at(0, 12, 0), 100],
    ['10MiB', at(0, 12, 0), 10 * MiB],
    ['off', at(0, 12, 0), undefined],
    ['4M:100M', at(0, 12, 0), 4 * MiB], // upload:download, we upload
    ['08:00,10M 19:00,2M 23:00,off', at(0, 7, 59), undefined], // before the first entry: the day before's last
    ['08:00,10M 19:00,2M 23:00,off', at(0, 8, 0), 10 * MiB],
    ['08:00,10M 19:00,2M 23:00,off', at(0, 18, 59), 10 * MiB],
    ['08:00,10M 19:00,2M 23:00,off', at(0, 19, 0), 2 * MiB],
    ['08:00,10M 19:00,2M 23:00,off', at(0, 23, 30), undefined],
    ['Mon-08:00,4M Sat-00:00,off', at(2, 12, 0), 4 * MiB], // Wednesday
    ['Mon-08:00,4M Sat-00:00,off', at(6, 12, 0), undefined], // Sunday
    ['Mon-08:00,4M Sat-00:00,off', at(0, 7, 0), undefined], // Monday before 08:00: still Saturday's
    ['monday-08:00,4M sunday-00:00,1M', at(6, 1, 0), MiB],
  ]
  for (const [text, when, expected] of table) {
    it(`${text} at ${when.toString().slice(0, 21)} → ${expected ?? 'off'}`, () => {
      assert.equal(parseTimetable(text).rateAt(when), expected)
    })
  }

  it('says when the rate next changes', () => {
    const timetable = parseTimetable('08:00,10M 19:00,2M')
    assert.deepEqual(timetable.nextChangeAfter(at(0, 12, 0)), new Date(2026, 11, 7, 19, 0, 0))
    assert.deepEqual(timetable.nextChangeAfter(at(0, 20, 0)), new Date(2026, 11, 8, 8, 0, 0))
    assert.equal(parseTimetable('10M').nextChangeAfter(at(0, 12, 0)), undefined)
  })

  it('keeps the text, normalised', () => {
    assert.equal(parseTimetable('  08:00,10M   23:00,off ').text, '08:00,10M 23:00,off')
  })

  const mistakes: Array<[string, RegExp]> = [
    ['', /is empty/],
    ['10X', /rate "10X" is not a size per second/],
    ['fast', /rate "fast" is not a size per second/],
    ['0', /below one byte per second; use off/],
    ['8:00 10M', /entry "8:00" is not \[DAY-\]HH:MM,RATE/],
    ['25:00,10M', /25:00 is not a time of day/],
    ['08:61,10M', /08:61 is not a time of day/],
    ['Xyz-08:00,10M', /"Xyz" is not a day/],
    ['08:00,10M 08:00,2M', /another entry already sets a rate at that time/],
    ['Mon-08:00,1M 08:00,2M', /another entry already sets a rate at that time/],
    ['08:00,1M:2M:3M', /is not a size per second/],
  ]
  for (const [text, message] of mistakes) {
    it(`refuses ${JSON.stringify(text)} saying why`, () => {
      assert.match(errorOf(() => parseTimetable(text)), message)
    })
  }

  it('stops config loading with the setting and the reason, for the overall and per-host caps', () => {
    const message = thrownMessage('ERR_CONFIG_INVALID', () => loadConfig({ APUBI_BANDWIDTH_LIMIT: '08:00,10M 19:00,lots' }))
    assert.match(message, /APUBI_BANDWIDTH_LIMIT \(bandwidthLimit\): .*"19:00,lots": rate "lots" is not a size per second/)
    assert.equal(loadConfig({ APUBI_BANDWIDTH_LIMIT: '08:00,10M 23:00,off' }).bandwidthLimit, '08:00,10M 23:00,off')
  })
})

describe('fair bucket', () => {
  /** Two tasks draw for `seconds` of the test's clock: task a with four writers, task b with one. */
  async function draw(rate: () => number | undefined, seconds: number, writers: Record<string, number>) {
    let clock = 0
    const bucket = new FairBucket(rate, () => clock)
    const granted: Record<string, number> = Object.fromEntries(Object.keys(writers).map((t) => [t, 0]))
    const pending = new Set<Promise<void>>()
    const slice = 16 * 1024
    const stop = new AbortController()
    const writer = async (task: string): Promise<void> => {
      while (!stop.signal.aborted) {
        const wait = bucket.take(task, slice, stop.signal)
        if (wait) await wait.catch(() => {})
        else await Promise.resolve()
        if (!stop.signal.aborted) granted[task]! += slice
      }
    }
    for (const [task, count] of Object.entries(writers)) for (let i = 0; i < count; i++) pending.add(writer(task))
    // The test's clock moves 10 ms at a time; the bucket's own timers run on the real one.
    for (; clock < seconds * 1000; clock += 10) {
      bucket.retime()
      await new Promise((r) => setImmediate(r))
    }
    stop.abort()
    await Promise.all(pending)
    return granted
  }

  it('grants no more than the rate over time, shared equally by tasks whatever their writers', async () => {
    const granted = await draw(() => 1 * MiB, 4, { a: 4, b: 1 })
    const total = granted['a']! + granted['b']!
    assert.ok(total <= 4 * MiB + 0.2 * MiB, `${total} granted in 4 s at 1 MiB/s`)
    assert.ok(total >= 3.5 * MiB, `${total} granted in 4 s at 1 MiB/s`)
    assert.ok(Math.abs(granted['a']! - granted['b']!) <= 64 * 1024, `a ${granted['a']}, b ${granted['b']}`)
  })

  it('passes everything at once while the rate is off', async () => {
    const bucket = new FairBucket(() => undefined, () => 0)
    assert.equal(bucket.take('a', 1 << 30, new AbortController().signal), undefined)
    assert.equal(bucket.shareOf('a'), undefined)
  })

  it('says what share of the rate each drawing task may expect', () => {
    let clock = 0
    const bucket = new FairBucket(() => 4 * MiB, () => clock)
    const signal = new AbortController().signal
    void bucket.take('a', 1, signal)
    void bucket.take('b', 1, signal)
    assert.equal(bucket.shareOf('a'), 2 * MiB)
    assert.equal(bucket.shareOf('c'), undefined)
    clock += 1_500 // b and a drew nothing since
    assert.equal(bucket.shareOf('a'), undefined)
  })
})

describe('run-time timetables put in force as the cluster keeps them', () => {
  const noon = () => at(0, 12, 0).getTime()
  const configured = () => new Bandwidth({ overall: '10M', hosts: { 'a.example': '2M' } }, parseTimetable, noon)
  const schedules = (bandwidth: Bandwidth) => {
    const view = bandwidth.view()
    return { overall: view.overall && [view.overall.schedule, view.overall.changed], hosts: Object.fromEntries(Object.entries(view.hosts).map(([host, cap]) => [host, [cap.schedule, cap.changed]])) }
  }

  it('takes exactly the timetables kept: one left out goes back to the configured one', () => {
    const bandwidth = configured()
    bandwidth.override({ overall: '4M', hosts: { 'A.Example.': '1M', 'b.example': '3M' } })
    assert.deepEqual(schedules(bandwidth), { overall: ['4M', true], hosts: { 'a.example': ['1M', true], 'b.example': ['3M', true] } })
    bandwidth.override({ hosts: { 'b.example': '08:00,3M 20:00,off' } })
    assert.deepEqual(schedules(bandwidth), { overall: ['10M', false], hosts: { 'a.example': ['2M', false], 'b.example': ['08:00,3M 20:00,off', true] } })
    bandwidth.override({ hosts: {} })
    assert.deepEqual(schedules(bandwidth), { overall: ['10M', false], hosts: { 'a.example': ['2M', false] } })
  })

  it('refuses a wrong kept timetable saying which, changing nothing', () => {
    const bandwidth = configured()
    bandwidth.override({ overall: '4M', hosts: {} })
    assert.match(thrownMessage('ERR_REQUEST_INVALID', () => bandwidth.override({ hosts: { 'b.example': 'lots' } })), /Bandwidth of host b.example: "lots": rate "lots" is not a size per second/)
    assert.deepEqual(schedules(bandwidth), { overall: ['4M', true], hosts: { 'a.example': ['2M', false] } })
  })

  it('checks a change without making it, hosts named as the caps key them', () => {
    const bandwidth = configured()
    assert.deepEqual(bandwidth.checkChange({ overall: null, hosts: { 'B.Example.': '1M', 'a.example': null } }), { overall: null, hosts: { 'b.example': '1M', 'a.example': null } })
    assert.deepEqual(bandwidth.checkChange({}), {})
    assert.match(thrownMessage('ERR_REQUEST_INVALID', () => bandwidth.checkChange({ overall: '19:00,lots' })), /Bandwidth overall: "19:00,lots"/)
    assert.deepEqual(schedules(bandwidth), { overall: ['10M', false], hosts: { 'a.example': ['2M', false] } })
  })
})
