import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'

/** Who writes a log line or answers a dashboard: several instances may share one PostgreSQL database. */
export interface Instance {
  /** Always `apubi-server`: what an aggregator filters this service's lines by. */
  readonly service: string
  /** The package's version. */
  readonly version: string
  /** `host:pid`, as the worker names its leases. */
  readonly instance: string
}

/** The package's version; package.json is two folders up from both src/observability and dist/observability. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

let known: Instance | undefined

/** This process, read once. */
export function thisInstance(): Instance {
  return (known ??= { service: 'apubi-server', version: packageVersion(), instance: `${hostname()}:${process.pid}` })
}
