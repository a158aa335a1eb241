// Public API of config/: the settings schema and the one loader.
export { loadConfig } from './load.js'
export { settings } from './schema.js'
export type { Config } from './schema.js'
export { parseTimetable } from './timetable.js'
export type { Timetable } from './timetable.js'
