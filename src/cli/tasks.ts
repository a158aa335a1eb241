import { AdminApiError, AdminClient, type AdminTask, type AdminTaskDetail } from '../client/index.js'
import { redact } from '../observability/index.js'
import { formatBytes, formatDuration } from './format.js'

/** `apubi tasks` and `apubi task`: the operators' view, through this server's admin API. */
export interface AdminFlags {
  readonly url: string
  readonly token?: string
  readonly json?: boolean
}

export interface TasksFlags extends AdminFlags {
  readonly state?: string
  readonly kind?: string
  readonly since?: string
  readonly until?: string
  readonly search?: string
  readonly sort?: string
  readonly limit?: string
  readonly offset?: string
}

/** Lists tasks, active ones first then newest (or as --sort asks): one line each, a failed task's reason below it. */
export async function listTasks(flags: TasksFlags): Promise<number> {
  return guarded(async () => {
    const page = await new AdminClient(flags.url, flags.token).listTasks({
      state: flags.state && stateArgument(flags.state),
      kind: flags.kind,
      from: flags.since && timeArgument(flags.since, '--since'),
      to: flags.until && timeArgument(flags.until, '--until'),
      q: flags.search,
      ...sortArgument(flags.sort),
      ...(flags.limit && { limit: Number(flags.limit) }),
      ...(flags.offset && { offset: Number(flags.offset) }),
    })
    if (flags.json) return print(JSON.stringify(page, null, 2))
    const rows = page.tasks.map((t) => [t.id, t.state, t.kind, progressOf(t), t.createdAt.replace('T', ' ').slice(0, 19), formatDuration(t.durationSeconds), `${t.source ?? ''}${t.source ? ' → ' : ''}${t.destination}`])
    const widths = [0, 1, 2, 3, 4, 5].map((i) => Math.max(...[HEADER, ...rows].map((r) => r[i]!.length)))
    const line = (cells: string[]) => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd()
    const out = [line(HEADER)]
    page.tasks.forEach((task, i) => {
      out.push(line(rows[i]!))
      if (task.lastError && (task.state === 'failed' || task.state === 'retry_wait')) out.push(`  ${task.state === 'failed' ? 'failed' : 'will retry'}: ${task.lastError.code} ${task.lastError.message}`)
      if (task.rerunOf) out.push(`  re-run of ${task.rerunOf}`)
    })
    const shown = page.tasks.length === 0 ? 'no task matches' : `${page.offset + 1}-${page.offset + page.tasks.length} of ${page.total}`
    out.push(`(${shown})`)
    return print(out.join('\n'))
  })
}

const HEADER = ['TASK', 'STATE', 'KIND', 'PROGRESS', 'CREATED (UTC)', 'DURATION', 'SOURCE → DESTINATION']

const SORTS: Record<string, { sort: string; order?: string }> = {
  active: { sort: 'active' },
  newest: { sort: 'created' },
  oldest: { sort: 'created', order: 'asc' },
  finished: { sort: 'finished' },
  longest: { sort: 'duration' },
  shortest: { sort: 'duration', order: 'asc' },
}

/** `--sort`: one of SORTS' names, as people say it. */
function sortArgument(value: string | undefined): { sort?: string; order?: string } {
  if (value === undefined) return {}
  const sort = SORTS[value.trim().toLowerCase()]
  if (!sort) throw new AdminApiError(0, 'ERR_REQUEST_INVALID', `--sort ${value}: give one of ${Object.keys(SORTS).join(', ')}`)
  return sort
}

/** Everything about one task (its TaskId, or the first characters of it): fields, attempt history, files with checksums, metadata. */
export async function showTask(id: string, flags: AdminFlags): Promise<number> {
  return guarded(async () => {
    const client = new AdminClient(flags.url, flags.token)
    const task = await client.task(id).catch(async (e: unknown) => {
      if (!(e instanceof AdminApiError) || e.httpStatus !== 404) throw e
      return client.task(await idStartingWith(client, id, e))
    })
    if (flags.json) return print(JSON.stringify(task, null, 2))
    return print(describe(task))
  })
}

/**
 * The one task whose id starts with `prefix` (the 8 characters a table shows, say).
 * @throws `notFound` when none does; an AdminApiError naming the candidates when several do.
 */
async function idStartingWith(client: AdminClient, prefix: string, notFound: AdminApiError): Promise<string> {
  const wanted = prefix.trim().toLowerCase()
  if (wanted.length < 4) throw notFound
  const { tasks } = await client.listTasks({ q: wanted, limit: 10 })
  const matching = tasks.filter((t) => t.id.toLowerCase().startsWith(wanted)).map((t) => t.id)
  if (matching.length === 0) throw notFound
  if (matching.length > 1) throw new AdminApiError(0, 'ERR_REQUEST_INVALID', `${prefix} starts several TaskIds: ${matching.join(', ')}`)
  return matching[0]!
}

function describe(task: AdminTaskDetail): string {
  const fields: Array<[string, string | undefined]> = [
    ['Task', task.id],
    ['State', `${task.state} (${task.status})`],
    ['Kind', task.kind],
    ['Source', task.source],
    ['Destination', task.destination],
    ['Target', task.target],
    ['Final destination', task.finalDestination],
    ['Reason', task.lastError && `${task.lastError.code} ${task.lastError.message}`],
    ['Re-run of', task.rerunOf],
    ['Attempts', `${task.attempts} of ${task.maxAttempts}`],
    ['Progress', progressOf(task) || undefined],
    ['Step', task.step === 'invalidating' ? 'telling caches and CDNs (invalidation)' : undefined],
    ['Package verified', task.package && packageOf(task.package)],
    ['Speed', task.bytesPerSecond === undefined ? undefined : `${formatBytes(task.bytesPerSecond)}/s`],
    ['ETA', task.etaSeconds === undefined ? undefined : formatDuration(task.etaSeconds)],
    ['Bandwidth cap', task.limitBytesPerSecond === undefined ? undefined : `${formatBytes(task.limitBytesPerSecond)}/s (its share)`],
    ['Created', task.createdAt],
    ['Started', task.startedAt],
    ['Finished', task.finishedAt],
    ['Next attempt', task.nextAttemptAt],
    ['Duration', `${formatDuration(task.durationSeconds)}${task.finishedAt ? '' : ' so far'} (waited ${formatDuration(task.timings.waitedSeconds)})`],
  ]
  const width = Math.max(...fields.map(([name]) => name.length)) + 1
  const out = fields.filter(([, value]) => value !== undefined).map(([name, value]) => `${`${name}:`.padEnd(width)} ${value}`)
  if (task.origins) {
    out.push('', 'Origins:')
    for (const o of task.origins) out.push([`  ${o.origin}`, o.state, amountOf(o.progress).join(', '), o.error && `${o.error.code} ${o.error.message}`].filter(Boolean).join('  '))
  }
  if (task.invalidations.length > 0) {
    out.push('', 'Invalidations:')
    for (const i of task.invalidations) out.push(`  #${i.attempt}  ${i.at}  ${i.provider}  ${i.request}  ${i.subject}  ${i.ok ? 'ok' : 'failed'}${i.status === undefined ? '' : ` ${i.status}`}`)
  }
  if (task.notifications.length > 0) {
    out.push('', 'Notifications:')
    for (const n of task.notifications) out.push(`  ${n.receiver}  ${n.event}  ${n.state}  ${n.attempts} attempt${n.attempts === 1 ? '' : 's'}${n.lastStatus === undefined ? '' : `  HTTP ${n.lastStatus}`}`)
  }
  out.push('', 'Attempt history:')
  if (task.attemptHistory.length === 0) out.push('  none')
  for (const e of task.attemptHistory) out.push(`  #${e.attempt}  ${e.at}  ${e.code}  ${e.message}`)
  out.push('', 'Files:')
  if (task.files.length === 0) out.push('  none')
  for (const f of task.files) {
    out.push(`  ${f.path}  ${f.size} bytes  verified by ${f.verifiedBy}${f.resumedFrom > 0 ? `  resumed from ${f.resumedFrom}` : ''}`)
    if (f.md5) out.push(`    md5    ${f.md5}`)
    if (f.sha256) out.push(`    sha256 ${f.sha256}`)
  }
  if (task.metadata.length > 0) {
    out.push('', 'Metadata:')
    for (const m of task.metadata) out.push(`  ${m.key} = ${m.value}`)
  }
  return out.join('\n')
}

/** `3 manifests, 2 renditions, 14 referenced files, 4.0 s`: what reading the package back found. */
function packageOf(p: NonNullable<AdminTaskDetail['package']>): string {
  const duration = p.durationSeconds === undefined ? '' : `, ${p.durationSeconds.toFixed(1)} s`
  return `${p.manifests} manifests, ${p.renditions} renditions, ${p.referencedFiles} referenced files${duration}`
}

function progressOf(task: AdminTask): string {
  const parts = amountOf(task.progress)
  if (task.state === 'running' && task.bytesPerSecond !== undefined) parts.push(`${formatBytes(task.bytesPerSecond)}/s`)
  if (task.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(task.etaSeconds)}`)
  return parts.join(', ')
}

/** Our states, as the admin API filters by them. */
const OURS = ['queued', 'running', 'retry_wait', 'succeeded', 'failed', 'cancelled']

/** APUBI's names: what the WFM would see of each state (a cancelled task is FAILED to it). */
const APUBI: Readonly<Record<string, readonly string[]>> = {
  SUCCESS: ['succeeded'],
  FAILED: ['failed', 'cancelled'],
  IN_PROGRESS: ['queued', 'running', 'retry_wait'],
}

/**
 * `--state FAILED,running` as the API's comma-separated states. APUBI's names written as APUBI
 * writes them mean what the WFM sees; in any other case a name is ours first (`failed` is not
 * `cancelled`), then APUBI's.
 */
export function stateArgument(value: string): string {
  const states = value.split(',').flatMap((given) => {
    const name = given.trim()
    const lower = name.toLowerCase().replace(/-/g, '_')
    const known = APUBI[name] ?? (OURS.includes(lower) ? [lower] : APUBI[lower.toUpperCase()])
    if (known) return known
    throw new AdminApiError(0, 'ERR_REQUEST_INVALID', `--state ${name}: give ${OURS.join(', ')}, or the APUBI names SUCCESS, FAILED, IN_PROGRESS (any case)`)
  })
  return [...new Set(states)].join(',')
}

/** How much of the bytes and files is done, as parts of a progress line. */
function amountOf({ bytesDone, bytesTotal, filesDone, filesTotal }: AdminTask['progress']): string[] {
  const parts: string[] = []
  if (bytesTotal > 0) parts.push(`${Math.floor((bytesDone / bytesTotal) * 100)}% of ${formatBytes(bytesTotal)}`)
  if (filesTotal > 1) parts.push(`${filesDone}/${filesTotal} files`)
  return parts
}

const RELATIVE = /^(\d+)\s*(s|m|min|h|d)$/
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }

/** `30m`, `2h`, `1d` ago, or a date-time as the API takes it (ISO 8601, epoch ms). */
export function timeArgument(value: string, flag: string, now = Date.now()): string {
  const relative = RELATIVE.exec(value.trim())
  if (relative) return new Date(now - Number(relative[1]) * UNIT_MS[relative[2]!]!).toISOString()
  if (/^\d+$/.test(value) || Number.isFinite(Date.parse(value))) return value
  throw new AdminApiError(0, 'ERR_REQUEST_INVALID', `${flag} ${value}: give a date-time (2025-01-31T08:00:00Z) or an age (30m, 2h, 1d)`)
}

function print(text: string): number {
  process.stdout.write(`${redact(text)}\n`)
  return 0
}

/** Exit codes as the other commands: 0 success, 2 an error answer, 3 server unreachable. */
async function guarded(work: () => Promise<number>): Promise<number> {
  try {
    return await work()
  } catch (e) {
    if (e instanceof AdminApiError) {
      process.stderr.write(redact(`${e.httpStatus ? `HTTP ${e.httpStatus}: ` : ''}${e.message}\n`))
      return 2
    }
    const cause = (e as Error).cause instanceof Error ? ` (${((e as Error).cause as Error).message})` : ''
    process.stderr.write(redact(`cannot reach the server: ${(e as Error).message}${cause}\n`))
    return 3
  }
}
