import type { Code } from '../errors.js'
import { redact } from '../observability/index.js'
import type { PackageSummary, Task, TaskQuery, TaskState, TaskSummary } from './types.js'

/** A task row as either store reads it: column names as in both schemas. */
export type Row = Record<string, unknown>

const optional = <T>(value: unknown): T | undefined => (value === null ? undefined : (value as T))

/** What a listing and a whole task share. */
function common(row: Row) {
  const errorCode = optional<Code>(row['error_code'])
  return {
    id: row['id'] as string,
    kind: row['kind'] as Task['kind'],
    state: row['state'] as TaskState,
    attempts: row['attempts'] as number,
    maxAttempts: row['max_attempts'] as number,
    runAt: row['run_at'] as number,
    bytesDone: row['bytes_done'] as number,
    bytesTotal: row['bytes_total'] as number,
    filesDone: row['files_done'] as number,
    filesTotal: row['files_total'] as number,
    lastError: errorCode && { code: errorCode, message: row['error_message'] as string },
    createdAt: row['created_at'] as number,
    startedAt: optional<number>(row['started_at']),
    updatedAt: row['updated_at'] as number,
    finishedAt: optional<number>(row['finished_at']),
    ...(optional<string>(row['rerun_of']) !== undefined && { rerunOf: row['rerun_of'] as string }),
  }
}

/** Shown locations come from the shown columns, and are redacted again for rows older than them. */
export function toSummary(row: Row): TaskSummary {
  const source = optional<string>(row['source_shown'])
  return {
    ...common(row),
    shown: {
      ...(source !== undefined && { source: redact(source) }),
      destination: redact(row['destination_shown'] as string),
      target: redact(row['target_shown'] as string),
    },
  }
}

/** `metadataPairs`: SQLite keeps them as JSON text, PostgreSQL as jsonb (already parsed). */
export function toTask(row: Row, metadataPairs: Task['metadataPairs']): Task {
  return {
    ...common(row),
    source: optional(row['source']),
    destination: row['destination'] as string,
    target: row['target'] as string,
    finalDestination: optional(row['final_destination']),
    metadataXml: optional(row['metadata_xml']),
    metadataPairs,
    leaseOwner: optional(row['lease_owner']),
    leaseToken: row['lease_token'] as number,
    leaseUntil: optional(row['lease_until']),
    ...packageOf(row),
  }
}

/** The order parameters of a listing, as both stores' listTasks take them (see listOrder in their sql.ts). */
export function orderOf(query: TaskQuery): { sort: string; direction: 1 | -1; activeFirst: 0 | 1; now: number } {
  const sort = query.sort ?? 'active'
  return { sort, direction: query.order === 'asc' ? 1 : -1, activeFirst: sort === 'active' ? 1 : 0, now: query.now ?? Date.now() }
}

/** The package summary kept as JSON text; absent for a task that published none. */
function packageOf(row: Row): Pick<Task, 'package'> {
  const text = optional<string>(row['package_summary'])
  return text === undefined ? {} : { package: JSON.parse(text) as PackageSummary }
}
