import type pg from 'pg'
import type { BandwidthChange, BandwidthOverrides } from '../../transfer/index.js'
import type { BandwidthOverrideStore } from '../shared-bandwidth.js'
import * as sql from './sql.js'

/** The apubi_setting row: JSON `{ "overall": "<timetable>", "hosts": { "<host>": "<timetable>" } }`. */
const SETTING = 'bandwidth_overrides'

/** The bandwidth timetables set at run time, kept in the database for every instance. */
export function createBandwidthOverrideStore(pool: pg.Pool): BandwidthOverrideStore {
  return {
    async read() {
      const row = (await pool.query<{ value: string }>(sql.settingValue, [SETTING])).rows[0]
      return row ? overridesOf(row.value) : { hosts: {} }
    },
    async change(change: BandwidthChange) {
      return overridesOf((await pool.query<{ value: string }>(sql.mergeCapsSetting, [SETTING, JSON.stringify(change)])).rows[0]!.value)
    },
  }
}

/** @throws Error saying what is wrong with a value that is not one this server wrote. */
function overridesOf(value: string): BandwidthOverrides {
  const kept = JSON.parse(value) as unknown
  const isText = (v: unknown): v is string => typeof v === 'string'
  const { overall, hosts } = (kept ?? {}) as { overall?: unknown; hosts?: unknown }
  const hostsOk = hosts === undefined || (typeof hosts === 'object' && hosts !== null && !Array.isArray(hosts) && Object.values(hosts).every(isText))
  if (typeof kept !== 'object' || kept === null || Array.isArray(kept) || (overall !== undefined && !isText(overall)) || !hostsOk) {
    throw new Error(`apubi_setting ${SETTING} is not { "overall": "<timetable>", "hosts": { "<host>": "<timetable>" } }: ${value.slice(0, 200)}`)
  }
  return { ...(overall !== undefined && { overall }), hosts: (hosts ?? {}) as Record<string, string> }
}
