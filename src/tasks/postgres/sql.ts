/**
 * Every PostgreSQL statement of the task store, by name; values are always bound ($1…), never
 * interpolated. The semantics are those of sqlite/sql.ts, statement for statement; where SQLite relies
 * on its single writer, these lock rows (`FOR UPDATE SKIP LOCKED`, `FOR SHARE`) or let a unique
 * index decide, because several instances write at once.
 */

/**
 * The schema, one entry per version, applied in order by migrate.ts and never edited once released:
 * a change is a new entry. Times are epoch ms (bigint), as the store interface speaks them.
 */
export const migrations: readonly string[] = [
  `CREATE TABLE task (
    id text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('load', 'purge')),
    state text NOT NULL CHECK (state IN ('queued', 'running', 'retry_wait', 'succeeded', 'failed')),
    source text,
    destination text NOT NULL,
    target text NOT NULL,
    final_destination text,
    metadata_xml text,
    metadata_pairs jsonb NOT NULL DEFAULT '[]',
    dedupe_key text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    run_at bigint NOT NULL,
    lease_owner text,
    lease_token integer NOT NULL DEFAULT 0,
    lease_until bigint,
    bytes_done bigint NOT NULL DEFAULT 0,
    bytes_total bigint NOT NULL DEFAULT 0,
    files_done integer NOT NULL DEFAULT 0,
    files_total integer NOT NULL DEFAULT 0,
    error_code text,
    error_message text,
    created_at bigint NOT NULL,
    started_at bigint,
    updated_at bigint NOT NULL,
    finished_at bigint,
    source_shown text,
    destination_shown text,
    target_shown text
  );
  CREATE UNIQUE INDEX task_active_dedupe ON task (dedupe_key) WHERE state IN ('queued', 'running', 'retry_wait');
  CREATE INDEX task_due ON task (run_at, created_at) WHERE state IN ('queued', 'retry_wait');
  CREATE INDEX task_lease ON task (lease_until) WHERE state = 'running';
  CREATE INDEX task_finished ON task (finished_at) WHERE finished_at IS NOT NULL;
  CREATE INDEX task_created ON task (created_at);
  CREATE TABLE task_error (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id text NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    at bigint NOT NULL,
    code text NOT NULL,
    message text NOT NULL
  );
  CREATE INDEX task_error_task ON task_error (task_id, seq);
  CREATE TABLE task_file (
    task_id text NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    rel text COLLATE "C" NOT NULL,
    size bigint NOT NULL,
    md5 text,
    sha256 text,
    verified_by text NOT NULL,
    resumed_from bigint NOT NULL DEFAULT 0,
    at bigint NOT NULL,
    PRIMARY KEY (task_id, rel)
  );`,
  // The failed task a re-run was made from, so operators can follow one to the other.
  `ALTER TABLE task ADD COLUMN rerun_of text;`,
  // What the read-back of a published streaming package found (JSON), for operators.
  `ALTER TABLE task ADD COLUMN package_summary text;`,
]

/** Where migrate.ts records the versions applied. */
export const createMigrationTable = `CREATE TABLE IF NOT EXISTS apubi_schema (
    version integer PRIMARY KEY,
    applied_at bigint NOT NULL
  )`

export const schemaVersion = `SELECT coalesce(max(version), 0) AS version FROM apubi_schema`

export const recordMigration = `INSERT INTO apubi_schema (version, applied_at) VALUES ($1, $2)`

/** Waits for the lock (of this database) until the transaction ends. */
export const lockUntilCommit = `SELECT pg_advisory_xact_lock($1::bigint)`

/** Takes the lock (of this database) for the session, or answers false at once. */
export const tryLock = `SELECT pg_try_advisory_lock($1::bigint) AS locked`

export const unlock = `SELECT pg_advisory_unlock($1::bigint)`

/** The index named is the one a concurrent identical insert collides on: that insert waits, then does nothing. */
export const insertTask = `INSERT INTO task (id, kind, state, source, destination, target, metadata_xml, metadata_pairs,
    dedupe_key, max_attempts, run_at, created_at, updated_at, source_shown, destination_shown, target_shown)
  VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11, $12, $13)
  ON CONFLICT (dedupe_key) WHERE state IN ('queued', 'running', 'retry_wait') DO NOTHING
  RETURNING id`

export const activeByDedupeKey = `SELECT id FROM task
  WHERE dedupe_key = $1 AND state IN ('queued', 'running', 'retry_wait')`

/**
 * The columns a Task is read from, named rather than `*`: a prepared statement whose result shape
 * changed under it (a newer instance added a column) would fail in an instance still running.
 */
const taskColumns = `id, kind, state, source, destination, target, final_destination, metadata_xml, metadata_pairs,
  attempts, max_attempts, run_at, lease_owner, lease_token, lease_until, bytes_done, bytes_total, files_done,
  files_total, error_code, error_message, created_at, started_at, updated_at, finished_at, rerun_of, package_summary`

export const taskById = `SELECT ${taskColumns} FROM task WHERE id = $1`

export const statusById = `SELECT state, destination, final_destination FROM task WHERE id = $1`

/** `FOR SHARE` holds the task row: a claim or requeue cannot change the token until the file is recorded. */
export const recordFile = `INSERT INTO task_file (task_id, rel, size, md5, sha256, verified_by, resumed_from, at)
  SELECT id, $3, $4, $5, $6, $7, $8, $9 FROM task
  WHERE id = $1 AND lease_token = $2 AND state = 'running'
  FOR SHARE
  ON CONFLICT (task_id, rel) DO UPDATE SET size = excluded.size, md5 = excluded.md5, sha256 = excluded.sha256,
    verified_by = excluded.verified_by, resumed_from = excluded.resumed_from, at = excluded.at`

export const filesOfTask = `SELECT rel, size, md5, sha256, verified_by, resumed_from
  FROM task_file WHERE task_id = $1 ORDER BY rel`

export const errorsOfTask = `SELECT attempt, at, code, message FROM task_error WHERE task_id = $1 ORDER BY seq`

/**
 * The due task longest waiting, locked so that a concurrent claimer (of any instance) skips it and
 * takes the next one instead of queueing behind us.
 */
export const claimNext = `UPDATE task SET state = 'running', lease_owner = $1, lease_token = lease_token + 1,
    lease_until = $2, attempts = attempts + 1, started_at = coalesce(started_at, $3), updated_at = $3
  WHERE id = (SELECT id FROM task WHERE state IN ('queued', 'retry_wait') AND run_at <= $3
    ORDER BY run_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING ${taskColumns}`

export const renewLease = `UPDATE task SET lease_until = $3, updated_at = $4
  WHERE id = $1 AND lease_token = $2 AND state = 'running'`

export const saveProgress = `UPDATE task SET bytes_done = $3, bytes_total = $4, files_done = $5, files_total = $6, updated_at = $7
  WHERE id = $1 AND lease_token = $2 AND state = 'running'`

/** The outcome and, for a failure, its error row: one statement, so both or neither. */
export const finishTask = `WITH finished AS (
    UPDATE task SET state = $3, final_destination = $4, package_summary = coalesce($10, package_summary),
      error_code = coalesce($5, error_code), error_message = coalesce($6, error_message),
      run_at = $7, lease_owner = NULL, lease_until = NULL, updated_at = $8, finished_at = $9
    WHERE id = $1 AND lease_token = $2 AND state = 'running'
    RETURNING id, attempts
  ), logged AS (
    INSERT INTO task_error (task_id, attempt, at, code, message)
    SELECT id, attempts, $8, $5, $6 FROM finished WHERE $5::text IS NOT NULL
  )
  SELECT count(*) AS changed FROM finished`

export const releaseTask = `UPDATE task SET state = 'queued', attempts = attempts - 1, run_at = $3,
    lease_owner = NULL, lease_until = NULL, updated_at = $3
  WHERE id = $1 AND lease_token = $2 AND state = 'running'`

/**
 * Expired leases: requeued, or ended failed (with an error row) at their last attempt. Rows a worker
 * is renewing right now are locked, so skipped: their lease is being extended.
 */
export const requeueExpired = `WITH expired AS (
    SELECT id, attempts, max_attempts FROM task WHERE state = 'running' AND lease_until < $1
    FOR UPDATE SKIP LOCKED
  ), requeued AS (
    UPDATE task SET state = 'queued', run_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $1
    FROM expired WHERE task.id = expired.id AND expired.attempts < expired.max_attempts
    RETURNING task.id
  ), failed AS (
    UPDATE task SET state = 'failed', error_code = $2, error_message = $3 || ' (' || expired.attempts || ')',
      lease_owner = NULL, lease_until = NULL, updated_at = $1, finished_at = $1
    FROM expired WHERE task.id = expired.id AND expired.attempts >= expired.max_attempts
    RETURNING task.id, task.attempts, task.error_code, task.error_message
  ), logged AS (
    INSERT INTO task_error (task_id, attempt, at, code, message)
    SELECT id, attempts, $1, error_code, error_message FROM failed
  )
  SELECT (SELECT count(*) FROM requeued) + (SELECT count(*) FROM failed) AS changed`

export const deleteFinished = `DELETE FROM task WHERE finished_at IS NOT NULL AND finished_at < $1`

// The operators' side: listings, counts, cancel and re-run.

/** Every filter is optional: a null parameter lets every row through. */
/**
 * A task's state as operators see it: a FAILED task ended by an operator is `cancelled` (the WFM
 * still reads FAILED: see publicStatus).
 */
const operatorState = `CASE WHEN state = 'failed' AND error_code = 'ERR_CANCELLED' THEN 'cancelled' ELSE state END`

/** Every filter is optional: a null parameter lets every row through. `$5` also finds a TaskId by any part of it. */
const listFilter = `WHERE ($1::text IS NULL OR kind = $1)
    AND ($2::text[] IS NULL OR ${operatorState} = ANY ($2))
    AND ($3::bigint IS NULL OR created_at >= $3)
    AND ($4::bigint IS NULL OR created_at < $4)
    AND ($5::text IS NULL OR source_shown ILIKE $5 OR destination_shown ILIKE $5 OR target_shown ILIKE $5 OR id ILIKE $5)`

/**
 * The order of a listing: `$8` picks the key (created, finished, or duration: from submission to end,
 * or to `$11` while it runs), `$9` is 1 or -1; tasks without the key (not finished) come last. `$10`
 * (1) puts running, then retrying, then queued tasks above the ended ones.
 */
const sortKey = `CASE $8::text WHEN 'finished' THEN finished_at WHEN 'duration' THEN coalesce(finished_at, $11::bigint) - created_at ELSE created_at END`
const listOrder = (t: string, key: string) => `
    CASE WHEN $10::int = 0 THEN 0 WHEN ${t}state = 'running' THEN 0 WHEN ${t}state = 'retry_wait' THEN 1 WHEN ${t}state = 'queued' THEN 2 ELSE 3 END,
    ${key} IS NULL, ${key} * $9::int, ${t}id DESC`

/** The page and the total in one statement, so both are read from one snapshot. */
export const listTasks = `SELECT (SELECT count(*) FROM task ${listFilter}) AS total,
    coalesce((SELECT json_agg(page ORDER BY ${listOrder('page.', 'page.sort_key')}) FROM (
      SELECT id, kind, state, attempts, max_attempts, run_at, bytes_done, bytes_total, files_done, files_total,
        error_code, error_message, created_at, started_at, updated_at, finished_at, rerun_of,
        coalesce(source_shown, source) AS source_shown, coalesce(destination_shown, destination) AS destination_shown,
        coalesce(target_shown, target) AS target_shown, ${sortKey} AS sort_key
      FROM task ${listFilter}
      ORDER BY ${listOrder('', sortKey)} LIMIT $6 OFFSET $7) page), '[]') AS tasks`

export const countTasks = `SELECT
    coalesce((SELECT json_agg(c ORDER BY c.kind COLLATE "C", c.state COLLATE "C")
      FROM (SELECT kind, ${operatorState} AS state, count(*) AS count FROM task GROUP BY 1, 2) c), '[]') AS by_kind_and_state,
    (SELECT count(*) FROM task WHERE state = 'failed' AND error_code IS DISTINCT FROM 'ERR_CANCELLED' AND finished_at >= $1) AS failed_since,
    (SELECT count(*) FROM task WHERE state = 'failed' AND error_code = 'ERR_CANCELLED' AND finished_at >= $1) AS cancelled_since,
    (SELECT count(*) FROM task WHERE state = 'succeeded' AND finished_at >= $3) AS succeeded_since,
    (SELECT coalesce(sum(bytes_done), 0)::bigint FROM task WHERE state = 'succeeded' AND finished_at >= $3) AS bytes_since,
    (SELECT min(run_at) FROM task WHERE state IN ('queued', 'retry_wait') AND run_at <= $2) AS oldest_due_at,
    (SELECT min(started_at) FROM task WHERE state = 'running') AS oldest_running_started_at`

/** The lease token moves on: a worker still holding the old one can no longer write. */
export const cancelTask = `WITH cancelled AS (
    UPDATE task SET state = 'failed', error_code = $2, error_message = $3, lease_owner = NULL, lease_until = NULL,
      lease_token = lease_token + 1, updated_at = $4, finished_at = $4
    WHERE id = $1 AND state IN ('queued', 'running', 'retry_wait')
    RETURNING id, attempts
  ), logged AS (
    INSERT INTO task_error (task_id, attempt, at, code, message) SELECT id, attempts, $4, $2, $3 FROM cancelled
  )
  SELECT count(*) AS changed FROM cancelled`

export const rerunTask = `INSERT INTO task (id, kind, state, source, destination, target, metadata_xml, metadata_pairs,
    dedupe_key, max_attempts, run_at, created_at, updated_at, source_shown, destination_shown, target_shown, rerun_of)
  SELECT $2, kind, 'queued', source, destination, target, metadata_xml, metadata_pairs,
    dedupe_key, max_attempts, $3, $3, $3, source_shown, destination_shown, target_shown, id
  FROM task WHERE id = $1 AND state = 'failed'
  ON CONFLICT (dedupe_key) WHERE state IN ('queued', 'running', 'retry_wait') DO NOTHING
  RETURNING id`

export const dedupeKeyOfFailed = `SELECT dedupe_key FROM task WHERE id = $1 AND state = 'failed'`

export const ping = `SELECT 1`

/** The channel `releaseHostSlot` notifies, with the host's lock key as payload. */
export const hostSlotChannel = 'apubi_host_slot'

export const listenHostSlots = `LISTEN ${hostSlotChannel}`

/** Takes connection slot `$2` of host `$1` for the session, or answers false at once. */
export const tryHostSlot = `SELECT pg_try_advisory_lock($1::integer, $2::integer) AS locked`

/** Frees the slot and tells the other instances waiting for this host. */
export const releaseHostSlot = `SELECT pg_advisory_unlock($1::integer, $2::integer), pg_notify('${hostSlotChannel}', $1::text)`
