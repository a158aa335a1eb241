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
  // Facts every instance on the database must agree on (the secret key's fingerprint, see key-check.ts).
  `CREATE TABLE apubi_setting (
    name text PRIMARY KEY,
    value text NOT NULL
  );`,
  // Each request to a cache or CDN after a task's work, and its answer.
  `CREATE TABLE task_invalidation (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id text NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    at bigint NOT NULL,
    provider text NOT NULL,
    request text NOT NULL,
    subject text NOT NULL,
    status integer,
    answer text NOT NULL,
    ok boolean NOT NULL
  );
  CREATE INDEX task_invalidation_task ON task_invalidation (task_id, seq);`,
  // The notification outbox. The trigger records every change of state that notifications speak of,
  // in the transaction that makes it, whichever statement does (finish, cancel, expired lease): a
  // crash between a task's end and its notification loses nothing. The notifier of one instance
  // turns each event into one delivery per receiver (deleting the event decides which instance).
  `CREATE TABLE task_event (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id text NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    event text NOT NULL CHECK (event IN ('start', 'retry', 'end')),
    attempt integer NOT NULL,
    at bigint NOT NULL
  );
  CREATE FUNCTION task_event_record() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO task_event (task_id, event, attempt, at)
    VALUES (NEW.id, CASE NEW.state WHEN 'running' THEN 'start' WHEN 'retry_wait' THEN 'retry' ELSE 'end' END, NEW.attempts, NEW.updated_at);
    RETURN NULL;
  END $$;
  CREATE TRIGGER task_event_record AFTER UPDATE OF state ON task FOR EACH ROW
    WHEN (NEW.state <> OLD.state AND NEW.state <> 'queued') EXECUTE FUNCTION task_event_record();
  CREATE TABLE delivery (
    id text COLLATE "C" PRIMARY KEY,
    event_seq bigint NOT NULL,
    task_id text NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    event text NOT NULL,
    receiver text NOT NULL,
    document text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_at bigint NOT NULL,
    lease_token integer NOT NULL DEFAULT 0,
    lease_until bigint,
    last_status integer,
    last_error text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    delivered_at bigint,
    UNIQUE (event_seq, receiver)
  );
  CREATE INDEX delivery_due ON delivery (next_at) WHERE state = 'pending';
  CREATE INDEX delivery_task ON delivery (task_id);
  CREATE INDEX delivery_created ON delivery (created_at);`,
]

/** Where migrate.ts records the versions applied. */
export const createMigrationTable = `CREATE TABLE IF NOT EXISTS apubi_schema (
    version integer PRIMARY KEY,
    applied_at bigint NOT NULL
  )`

export const schemaVersion = `SELECT coalesce(max(version), 0) AS version FROM apubi_schema`

export const recordMigration = `INSERT INTO apubi_schema (version, applied_at) VALUES ($1, $2)`

/** Who we are on the server, for a message that says what to grant to whom. */
export const whoAmI = `SELECT current_user AS role, current_database() AS database`

/** Records a setting unless one is there already; returns the one that counts. */
export const settingOnce = `WITH added AS (
    INSERT INTO apubi_setting (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value
  )
  SELECT value FROM added UNION ALL SELECT value FROM apubi_setting WHERE name = $1 LIMIT 1`

export const settingValue = `SELECT value FROM apubi_setting WHERE name = $1`

/**
 * Merges a change into a JSON setting of the form { "overall": "<text>", "hosts": { "<host>": "<text>" } }
 * (the bandwidth caps changed at run time) in one statement, so that two changes made at once both
 * count: a text replaces, null removes (jsonb_strip_nulls), what the change leaves out stays.
 */
export const mergeCapsSetting = `INSERT INTO apubi_setting AS setting (name, value) VALUES ($1, jsonb_strip_nulls($2::jsonb)::text)
  ON CONFLICT (name) DO UPDATE SET value = jsonb_strip_nulls(
    (setting.value::jsonb - 'hosts') || ($2::jsonb - 'hosts')
    || jsonb_build_object('hosts', coalesce(setting.value::jsonb -> 'hosts', '{}') || coalesce($2::jsonb -> 'hosts', '{}'))
  )::text
  RETURNING value`

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

// Cache invalidation records.

export const recordInvalidation = `INSERT INTO task_invalidation (task_id, attempt, at, provider, request, subject, status, answer, ok)
  SELECT id, attempts, $3, $4, $5, $6, $7, $8, $9 FROM task
  WHERE id = $1 AND lease_token = $2 AND state = 'running'
  FOR SHARE`

export const invalidationsOfTask = `SELECT attempt, at, provider, request, subject, status, answer, ok
  FROM task_invalidation WHERE task_id = $1 ORDER BY seq`

// The notification outbox (see the migration above).

export const pendingEvents = `SELECT seq, task_id, event, attempt, at FROM task_event ORDER BY seq LIMIT $1`

/** Whoever deletes the event expands it; a concurrent expander finds no row and inserts nothing. */
export const takeEvent = `DELETE FROM task_event WHERE seq = $1`

export const insertDelivery = `INSERT INTO delivery (id, event_seq, task_id, event, receiver, document, state, next_at, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7)
  ON CONFLICT (event_seq, receiver) DO NOTHING`

const deliveryColumns = `id, task_id, event, receiver, document, state, attempts, next_at, lease_token, last_status, last_error,
  created_at, updated_at, delivered_at`

/** The due delivery longest waiting, locked so that another instance's sender skips it. */
export const claimDelivery = `UPDATE delivery SET lease_token = lease_token + 1, lease_until = $1, attempts = attempts + 1, updated_at = $2
  WHERE id = (SELECT id FROM delivery WHERE state = 'pending' AND next_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
    ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING ${deliveryColumns}`

export const settleDelivery = `UPDATE delivery SET state = $3, next_at = $4, lease_until = NULL, last_status = $5,
    last_error = $6, updated_at = $7, delivered_at = CASE WHEN $3 = 'delivered' THEN $7::bigint END
  WHERE id = $1 AND lease_token = $2 AND state = 'pending'`

export const listDeliveries = `SELECT ${deliveryColumns} FROM delivery
  WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR task_id = $2)
  ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`

export const countDeliveries = `SELECT count(*)::integer AS total FROM delivery WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR task_id = $2)`

/** Again from the start, whatever became of it; the lease token moves on, so a sender still at it cannot settle it. */
export const resendDelivery = `UPDATE delivery SET state = 'pending', attempts = 0, next_at = $2, lease_until = NULL,
    lease_token = lease_token + 1, updated_at = $2, delivered_at = NULL
  WHERE id = $1
  RETURNING ${deliveryColumns}`
