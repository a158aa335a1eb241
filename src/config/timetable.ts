/**
 * rclone's `--bwlimit` value: one rate (`10M`, `off`), or a timetable of rates by time of day and,
 * optionally, day of week (`08:00,10M 19:00,2M 23:00,off`, `Mon-08:00,4M Sat-00:00,off`). A rate is
 * bytes per second with rclone's binary suffixes (B, K, M, G, T; no suffix: KiB), `off` for none;
 * rclone's `UP:DOWN` pair is accepted and its upload side used, since publishing uploads.
 */
export interface Timetable {
  /** What was parsed, normalised (single spaces): shown back to operators. */
  readonly text: string
  /** The rate at `at` in bytes per second (local time of day); undefined: no limit. */
  rateAt(at: Date): number | undefined
  /** When the rate next changes after `at`; undefined for a single rate. */
  nextChangeAfter(at: Date): Date | undefined
}

const MINUTES_PER_DAY = 1_440
const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const
const FULL_DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const
const UNITS: Readonly<Record<string, number>> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/**
 * Parses a rate or a timetable.
 * @throws Error saying which entry is wrong and what is expected (config loading lists it).
 */
export function parseTimetable(text: string): Timetable {
  const entries = text.trim().split(/\s+/).filter(Boolean)
  if (entries.length === 0) throw new Error('is empty: give a rate such as 10M, off, or a timetable such as "08:00,10M 23:00,off"')
  const normalised = entries.join(' ')
  if (entries.length === 1 && !entries[0]!.includes(',')) {
    const rate = parseRate(entries[0]!)
    return { text: normalised, rateAt: () => rate, nextChangeAfter: () => undefined }
  }
  const changes: Array<{ minute: number; rate: number | undefined }> = []
  for (const entry of entries) {
    const match = /^(?:([a-z]+)-)?(\d{1,2}):(\d{2}),(.+)$/i.exec(entry)
    if (!match) throw new Error(`entry "${entry}" is not [DAY-]HH:MM,RATE (as in "08:00,10M" or "Mon-08:00,off")`)
    const [, day, hours, minutes, rateText] = match as unknown as [string, string | undefined, string, string, string]
    if (Number(hours) > 23 || Number(minutes) > 59) throw new Error(`entry "${entry}": ${hours}:${minutes} is not a time of day (00:00 to 23:59)`)
    const rate = parseRate(rateText, entry)
    const minuteOfDay = Number(hours) * 60 + Number(minutes)
    const days = day === undefined ? [0, 1, 2, 3, 4, 5, 6] : [dayIndex(day, entry)]
    for (const d of days) {
      const minute = d * MINUTES_PER_DAY + minuteOfDay
      if (changes.some((c) => c.minute === minute)) throw new Error(`entry "${entry}": another entry already sets a rate at that time`)
      changes.push({ minute, rate })
    }
  }
  changes.sort((a, b) => a.minute - b.minute)
  const indexAt = (at: Date): number => {
    const minute = minuteOfWeek(at)
    let found = changes.length - 1 // before the week's first change, the week's last one still holds
    for (let i = 0; i < changes.length; i++) if (changes[i]!.minute <= minute) found = i
    return found
  }
  return {
    text: normalised,
    rateAt: (at) => changes[indexAt(at)]!.rate,
    nextChangeAfter(at) {
      const next = changes[(indexAt(at) + 1) % changes.length]!
      const ahead = (next.minute - minuteOfWeek(at) + MINUTES_PER_WEEK) % MINUTES_PER_WEEK || MINUTES_PER_WEEK
      const startOfMinute = new Date(at)
      startOfMinute.setSeconds(0, 0)
      return new Date(startOfMinute.getTime() + ahead * 60_000)
    },
  }
}

/** A rate in bytes per second; undefined for `off`. */
function parseRate(text: string, entry = text): number | undefined {
  const upload = text.split(':')[0]!
  if (/^off$/i.test(upload)) return undefined
  const match = /^(\d+(?:\.\d+)?)([bkmgt])?(?:i?b)?$/i.exec(upload)
  const bytes = match ? Number(match[1]) * UNITS[(match[2] ?? 'k').toLowerCase()]! : NaN
  if (!match || text.split(':').length > 2) throw new Error(`"${entry}": rate "${text}" is not a size per second such as 512K, 10M, 1.5G or off`)
  if (bytes < 1) throw new Error(`"${entry}": rate "${text}" is below one byte per second; use off for no limit`)
  return Math.floor(bytes)
}

function dayIndex(day: string, entry: string): number {
  const lower = day.toLowerCase()
  const index = Math.max(DAYS.indexOf(lower as (typeof DAYS)[number]), FULL_DAYS.indexOf(lower as (typeof FULL_DAYS)[number]))
  if (index < 0) throw new Error(`entry "${entry}": "${day}" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`)
  return index
}

function minuteOfWeek(at: Date): number {
  return at.getDay() * MINUTES_PER_DAY + at.getHours() * 60 + at.getMinutes()
}
