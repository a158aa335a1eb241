/** Every SQLite statement of the task store, by name; values are always bound, never interpolated. */

export const migrations: readonly string[] = [
  `CREATE TABLE task (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('load', 'purge')),
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'retry_wait', 'succeeded', 'failed')),
    source TEXT,
    destination TEXT NOT NULL,
    target TEXT NOT NULL,
    final_destination TEXT,
    metadata_xml TEXT,
    metadata_pairs TEXT NOT NULL DEFAULT '[]',
    dedupe_key TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    files_done INTEGER NOT NULL DEFAULT 0,
    files_total INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  CREATE UNIQUE INDEX task_active_dedupe ON task (dedupe_key) WHERE state IN ('queued', 'running', 'retry_wait');
  CREATE INDEX task_due ON task (run_at) WHERE state IN ('queued', 'retry_wait');
  CREATE INDEX task_lease ON task (lease_until) WHERE state = 'running';
  CREATE INDEX task_finished ON task (finished_at) WHERE finished_at IS NOT NULL;
  CREATE TABLE task_error (
    task_id TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL
  );
  CREATE INDEX task_error_task ON task_error (task_id);`,
  `CREATE TABLE task_file (
    task_id TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    rel TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT,
    sha256 TEXT,
    verified_by TEXT NOT NULL,
    resumed_from INTEGER NOT NULL DEFAULT 0,
    at INTEGER NOT NULL,
    PRIMARY KEY (task_id, rel)
  ) WITHOUT ROWID;`,
  // Locations as operators see and search them (credentials redacted): the values may be sealed.
  `ALTER TABLE task ADD COLUMN source_shown TEXT;
  ALTER TABLE task ADD COLUMN destination_shown TEXT;
  ALTER TABLE task ADD COLUMN target_shown TEXT;
  CREATE INDEX task_created ON task (created_at);`,
  // The failed task a re-run was made from, so operators can follow one to the other.
  `ALTER TABLE task ADD COLUMN rerun_of TEXT;`,
  // What the read-back of a published streaming package found (JSON), for operators.
  `ALTER TABLE task ADD COLUMN package_summary TEXT;`,
  // Each request to a cache or CDN after a task's work, and its answer.
  `CREATE TABLE task_invalidation (
    task_id TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    provider TEXT NOT NULL,
    request TEXT NOT NULL,
    subject TEXT NOT NULL,
    status INTEGER,
    answer TEXT NOT NULL,
    ok INTEGER NOT NULL
  );
  CREATE INDEX task_invalidation_task ON task_invalidation (task_id);`,
  // The notification outbox. The trigger records every change of state that notifications speak of,
  // in the transaction that makes it, whichever statement does (finish, cancel, expired lease): a
  // crash between a task's end and its notification loses nothing. The notifier turns each event
  // into one delivery per receiver.
  `CREATE TABLE task_event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    event TEXT NOT NULL CHECK (event IN ('start', 'retry', 'end')),
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE TRIGGER task_event_record AFTER UPDATE OF state ON task
    WHEN NEW.state <> OLD.state AND NEW.state <> 'queued'
  BEGIN
    INSERT INTO task_event (task_id, event, attempt, at)
    VALUES (NEW.id, CASE NEW.state WHEN 'running' THEN 'start' WHEN 'retry_wait' THEN 'retry' ELSE 'end' END, NEW.attempts, NEW.updated_at);
  END;
  CREATE TABLE delivery (
    id TEXT PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    task_id TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    receiver TEXT NOT NULL,
    document TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (event_seq, receiver)
  );
  CREATE INDEX delivery_due ON delivery (next_at) WHERE state = 'pending';
  CREATE INDEX delivery_task ON delivery (task_id);
  CREATE INDEX delivery_created ON delivery (created_at);`,
]

export const insertTask = `INSERT INTO task (id, kind, state, source, destination, target, metadata_xml, metadata_pairs,
    dedupe_key, max_attempts, run_at, created_at, updated_at, source_shown, destination_shown, target_shown)
  VALUES (@id, @kind, 'queued', @source, @destination, @target, @metadataXml, @metadataPairs,
    @dedupeKey, @maxAttempts, @now, @now, @now, @sourceShown, @destinationShown, @targetShown)
  ON CONFLICT DO NOTHING`

export const activeByDedupeKey = `SELECT id FROM task
  WHERE dedupe_key = ? AND state IN ('queued', 'running', 'retry_wait')`

export const taskById = `SELECT * FROM task WHERE id = ?`

export const statusById = `SELECT state, destination, final_destination FROM task WHERE id = ?`

export const recordFile = `INSERT INTO task_file (task_id, rel, size, md5, sha256, verified_by, resumed_from, at)
  SELECT @id, @rel, @size, @md5, @sha256, @verifiedBy, @resumedFrom, @now FROM task
  WHERE id = @id AND lease_token = @token AND state = 'running'
  ON CONFLICT (task_id, rel) DO UPDATE SET size = excluded.size, md5 = excluded.md5, sha256 = excluded.sha256,
    verified_by = excluded.verified_by, resumed_from = excluded.resumed_from, at = excluded.at`

export const filesOfTask = `SELECT rel, size, md5, sha256, verified_by AS verifiedBy, resumed_from AS resumedFrom
  FROM task_file WHERE task_id = ? ORDER BY rel`

export const errorsOfTask = `SELECT attempt, at, code, message FROM task_error WHERE task_id = ? ORDER BY rowid`

export const claimNext = `UPDATE task SET state = 'running', lease_owner = @worker, lease_token = lease_token + 1,
    lease_until = @leaseUntil, attempts = attempts + 1, started_at = coalesce(started_at, @now), updated_at = @now
  WHERE id = (SELECT id FROM task WHERE state IN ('queued', 'retry_wait') AND run_at <= @now
    ORDER BY run_at, created_at LIMIT 1)
  RETURNING *`

export const renewLease = `UPDATE task SET lease_until = @leaseUntil, updated_at = @now
  WHERE id = @id AND lease_token = @token AND state = 'running'`

export const saveProgress = `UPDATE task SET bytes_done = @bytesDone, bytes_total = @bytesTotal,
    files_done = @filesDone, files_total = @filesTotal, updated_at = @now
  WHERE id = @id AND lease_token = @token AND state = 'running'`

export const finishTask = `UPDATE task SET state = @state, final_destination = @finalDestination,
    package_summary = coalesce(@packageSummary, package_summary),
    error_code = coalesce(@errorCode, error_code), error_message = coalesce(@errorMessage, error_message),
    run_at = @runAt, lease_owner = NULL, lease_until = NULL, updated_at = @now, finished_at = @finishedAt
  WHERE id = @id AND lease_token = @token AND state = 'running'`

export const releaseTask = `UPDATE task SET state = 'queued', attempts = attempts - 1, run_at = @now,
    lease_owner = NULL, lease_until = NULL, updated_at = @now
  WHERE id = @id AND lease_token = @token AND state = 'running'`

export const insertError = `INSERT INTO task_error (task_id, attempt, at, code, message)
  VALUES (@id, @attempt, @now, @code, @message)`

export const expiredLeases = `SELECT id, attempts, max_attempts FROM task WHERE state = 'running' AND lease_until < ?`

export const requeueTask = `UPDATE task SET state = 'queued', run_at = @now, lease_owner = NULL, lease_until = NULL,
    updated_at = @now WHERE id = @id AND state = 'running'`

export const failExpiredTask = `UPDATE task SET state = 'failed', error_code = @code, error_message = @message,
    lease_owner = NULL, lease_until = NULL, updated_at = @now, finished_at = @now
  WHERE id = @id AND state = 'running'`

export const deleteFinished = `DELETE FROM task WHERE finished_at IS NOT NULL AND finished_at < ?`

// The operators' side: listings, counts, cancel and re-run.

/**
 * A task's state as operators see it: a FAILED task ended by an operator is `cancelled` (the WFM
 * still reads FAILED: see publicStatus).
 */
const operatorState = `CASE WHEN state = 'failed' AND error_code = 'ERR_CANCELLED' THEN 'cancelled' ELSE state END`

/** Every filter is optional: a null parameter lets every row through. `@pattern` also finds a TaskId by any part of it. */
const listFilter = `WHERE (@kind IS NULL OR kind = @kind)
    AND (@states IS NULL OR ${operatorState} IN (SELECT value FROM json_each(@states)))
    AND (@createdFrom IS NULL OR created_at >= @createdFrom)
    AND (@createdBefore IS NULL OR created_at < @createdBefore)
    AND (@pattern IS NULL OR source_shown LIKE @pattern ESCAPE '\\' OR destination_shown LIKE @pattern ESCAPE '\\'
      OR target_shown LIKE @pattern ESCAPE '\\' OR id LIKE @pattern ESCAPE '\\')`

/**
 * The order of a listing: `@sort` picks the key (created, finished, or duration: from submission to
 * end, or to `@now` while it runs), `@direction` is 1 or -1; tasks without the key (not finished) come
 * last. `@activeFirst` puts running, then retrying, then queued tasks above the ended ones.
 */
const sortKey = `CASE @sort WHEN 'finished' THEN finished_at WHEN 'duration' THEN coalesce(finished_at, @now) - created_at ELSE created_at END`
const listOrder = `ORDER BY
    CASE WHEN @activeFirst = 0 THEN 0 WHEN state = 'running' THEN 0 WHEN state = 'retry_wait' THEN 1 WHEN state = 'queued' THEN 2 ELSE 3 END,
    ${sortKey} IS NULL,
    ${sortKey} * @direction,
    id DESC`

/** Rows from before the shown columns existed fall back to the values, which the store redacts. */
export const listTasks = `SELECT id, kind, state, attempts, max_attempts, run_at, bytes_done, bytes_total, files_done,
    files_total, error_code, error_message, created_at, started_at, updated_at, finished_at, rerun_of,
    coalesce(source_shown, source) AS source_shown, coalesce(destination_shown, destination) AS destination_shown,
    coalesce(target_shown, target) AS target_shown
  FROM task ${listFilter}
  ${listOrder} LIMIT @limit OFFSET @offset`

export const countListed = `SELECT count(*) AS total FROM task ${listFilter}`

export const countByKindAndState = `SELECT kind, ${operatorState} AS state, count(*) AS count FROM task GROUP BY 1, 2 ORDER BY 1, 2`

/** Ended since the times asked: failures (cancels apart) and cancels since @failedSince, successes and their bytes since @doneSince. */
export const countEndedSince = `SELECT
    count(*) FILTER (WHERE state = 'failed' AND error_code IS NOT 'ERR_CANCELLED' AND finished_at >= @failedSince) AS failed,
    count(*) FILTER (WHERE state = 'failed' AND error_code = 'ERR_CANCELLED' AND finished_at >= @failedSince) AS cancelled,
    count(*) FILTER (WHERE state = 'succeeded' AND finished_at >= @doneSince) AS succeeded,
    coalesce(sum(bytes_done) FILTER (WHERE state = 'succeeded' AND finished_at >= @doneSince), 0) AS bytes
  FROM task WHERE finished_at >= min(@failedSince, @doneSince)`

export const oldestRunning = `SELECT min(started_at) AS startedAt FROM task WHERE state = 'running'`

export const oldestDue = `SELECT min(run_at) AS runAt FROM task WHERE state IN ('queued', 'retry_wait') AND run_at <= ?`

/** The lease token moves on: a worker still holding the old one can no longer write. */
export const cancelTask = `UPDATE task SET state = 'failed', error_code = @code, error_message = @message,
    lease_owner = NULL, lease_until = NULL, lease_token = lease_token + 1, updated_at = @now, finished_at = @now
  WHERE id = @id AND state IN ('queued', 'running', 'retry_wait')
  RETURNING attempts`

/** The WHERE is needed by SQLite's grammar for an upsert from a SELECT, besides choosing the row. */
export const rerunTask = `INSERT INTO task (id, kind, state, source, destination, target, metadata_xml, metadata_pairs,
    dedupe_key, max_attempts, run_at, created_at, updated_at, source_shown, destination_shown, target_shown, rerun_of)
  SELECT @newId, kind, 'queued', source, destination, target, metadata_xml, metadata_pairs,
    dedupe_key, max_attempts, @now, @now, @now, source_shown, destination_shown, target_shown, id
  FROM task WHERE id = @id AND state = 'failed'
  ON CONFLICT DO NOTHING`

export const dedupeKeyOfFailed = `SELECT dedupe_key FROM task WHERE id = ? AND state = 'failed'`

export const ping = `SELECT 1`

// Cache invalidation records.

export const recordInvalidation = `INSERT INTO task_invalidation (task_id, attempt, at, provider, request, subject, status, answer, ok)
  SELECT id, attempts, @now, @provider, @request, @subject, @status, @answer, @ok FROM task
  WHERE id = @id AND lease_token = @token AND state = 'running'`

export const invalidationsOfTask = `SELECT attempt, at, provider, request, subject, status, answer, ok
  FROM task_invalidation WHERE task_id = ? ORDER BY rowid`

// The notification outbox (see the migration above).

export const pendingEvents = `SELECT seq, task_id, event, attempt, at FROM task_event ORDER BY seq LIMIT ?`

export const takeEvent = `DELETE FROM task_event WHERE seq = ?`

export const insertDelivery = `INSERT INTO delivery (id, event_seq, task_id, event, receiver, document, state, next_at, created_at, updated_at)
  VALUES (@id, @seq, @taskId, @event, @receiver, @document, 'pending', @now, @now, @now)
  ON CONFLICT (event_seq, receiver) DO NOTHING`

const deliveryColumns = `id, task_id, event, receiver, document, state, attempts, next_at, lease_token, last_status, last_error,
  created_at, updated_at, delivered_at`

/** A pending delivery that is due and not leased (or whose lease ran out with its sender). */
export const claimDelivery = `UPDATE delivery SET lease_token = lease_token + 1, lease_until = @leaseUntil, attempts = attempts + 1, updated_at = @now
  WHERE id = (SELECT id FROM delivery WHERE state = 'pending' AND next_at <= @now AND (lease_until IS NULL OR lease_until < @now)
    ORDER BY next_at LIMIT 1)
  RETURNING ${deliveryColumns}`

export const settleDelivery = `UPDATE delivery SET state = @state, next_at = @nextAt, lease_until = NULL, last_status = @status,
    last_error = @error, updated_at = @now, delivered_at = CASE WHEN @state = 'delivered' THEN @now END
  WHERE id = @id AND lease_token = @token AND state = 'pending'`

export const listDeliveries = `SELECT ${deliveryColumns} FROM delivery
  WHERE (@state IS NULL OR state = @state) AND (@taskId IS NULL OR task_id = @taskId)
  ORDER BY created_at DESC, id DESC LIMIT @limit OFFSET @offset`

export const countDeliveries = `SELECT count(*) AS total FROM delivery WHERE (@state IS NULL OR state = @state) AND (@taskId IS NULL OR task_id = @taskId)`

/** Again from the start, whatever became of it; the lease token moves on, so a sender still at it cannot settle it. */
export const resendDelivery = `UPDATE delivery SET state = 'pending', attempts = 0, next_at = @now, lease_until = NULL,
    lease_token = lease_token + 1, updated_at = @now, delivered_at = NULL
  WHERE id = @id
  RETURNING ${deliveryColumns}`

// Around writes a later attempt can do again (see withoutSync in store.ts): prepared once, not per write.
export const syncNormal = `PRAGMA synchronous = NORMAL`
export const syncFull = `PRAGMA synchronous = FULL`
