/** A task as the admin API lists it (see src/admin/assets/openapi.json); URLs come redacted. */
export interface AdminTask {
  readonly id: string
  readonly kind: 'load' | 'purge'
  /** The operators' state: `cancelled` is a FAILED task an operator cancelled. */
  readonly state: 'queued' | 'running' | 'retry_wait' | 'succeeded' | 'failed' | 'cancelled'
  readonly status: 'IN_PROGRESS' | 'SUCCESS' | 'FAILED'
  readonly source?: string
  readonly destination: string
  readonly target: string
  readonly attempts: number
  readonly maxAttempts: number
  readonly progress: { readonly bytesDone: number; readonly bytesTotal: number; readonly filesDone: number; readonly filesTotal: number }
  readonly bytesPerSecond?: number
  readonly etaSeconds?: number
  /** While a bandwidth cap holds the task back: its fair share of the tightest one. */
  readonly limitBytesPerSecond?: number
  /** What a running task is doing: copying, or telling caches and CDNs afterwards. */
  readonly step?: 'transfer' | 'invalidating'
  readonly lastError?: { readonly code: string; readonly title?: string; readonly message: string }
  readonly createdAt: string
  readonly startedAt?: string
  readonly updatedAt: string
  readonly finishedAt?: string
  readonly nextAttemptAt?: string
  /** From submission to end, or to now while it has not ended. */
  readonly durationSeconds: number
  /** The failed task this one re-runs. */
  readonly rerunOf?: string
}

export interface AdminTaskDetail extends AdminTask {
  readonly finalDestination?: string
  readonly metadata: ReadonlyArray<{ readonly key: string; readonly value: string }>
  readonly attemptHistory: ReadonlyArray<{ readonly attempt: number; readonly at: string; readonly code: string; readonly message: string }>
  readonly files: ReadonlyArray<{
    readonly path: string
    readonly size: number
    readonly md5?: string
    readonly sha256?: string
    readonly verifiedBy: string
    readonly resumedFrom: number
  }>
  /** What reading a published streaming package back verified. */
  readonly package?: { readonly manifests: number; readonly renditions: number; readonly referencedFiles: number; readonly durationSeconds?: number }
  readonly timings: { readonly waitedSeconds: number; readonly elapsedSeconds: number }
  /** A task to a mirrored destination base: each origin's state, progress and error. */
  readonly origins?: ReadonlyArray<{
    readonly origin: string
    readonly state: string
    readonly progress: AdminTask['progress']
    readonly error?: { readonly code: string; readonly message: string }
  }>
  /** Its requests to caches and CDNs after the work, and their answers, oldest first. */
  readonly invalidations: ReadonlyArray<{ readonly attempt: number; readonly at: string; readonly provider: string; readonly request: string; readonly subject: string; readonly status?: number; readonly answer: string; readonly ok: boolean }>
  /** Its signed notifications, newest first. */
  readonly notifications: ReadonlyArray<{ readonly id: string; readonly event: string; readonly receiver: string; readonly state: string; readonly attempts: number; readonly lastStatus?: number }>
}

export interface AdminTaskPage {
  readonly tasks: readonly AdminTask[]
  readonly total: number
  readonly limit: number
  readonly offset: number
}

/** The listing's filters, as the API names them (all optional). */
export interface AdminTaskFilters {
  readonly state?: string
  readonly kind?: string
  readonly from?: string
  readonly to?: string
  readonly q?: string
  readonly sort?: string
  readonly order?: string
  readonly limit?: number
  readonly offset?: number
}

/** An answer of the admin API other than success: its HTTP status and error code. */
export class AdminApiError extends Error {
  override name = 'AdminApiError'
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`)
  }
}

/**
 * A client of apubi-server's own admin API (not part of APUBI: other servers do not have it). `server`
 * is any URL of the server: its SOAP endpoint as the other commands take it will do.
 */
export class AdminClient {
  private readonly base: URL

  constructor(
    server: string,
    private readonly token?: string,
  ) {
    this.base = new URL('/admin/api/', server)
    // The admin API takes a token, not the SOAP user's password a URL may carry (nor would fetch).
    this.base.username = ''
    this.base.password = ''
  }

  listTasks(filters: AdminTaskFilters = {}): Promise<AdminTaskPage> {
    const query = new URLSearchParams()
    for (const [name, value] of Object.entries(filters)) if (value !== undefined && value !== '') query.set(name, String(value))
    return this.call(`tasks?${query}`)
  }

  task(id: string): Promise<AdminTaskDetail> {
    return this.call(`tasks/${encodeURIComponent(id)}`)
  }

  cancel(id: string): Promise<AdminTaskDetail> {
    return this.call(`tasks/${encodeURIComponent(id)}/cancel`, 'POST')
  }

  rerun(id: string): Promise<{ id: string; created: boolean; rerunOf: string }> {
    return this.call(`tasks/${encodeURIComponent(id)}/rerun`, 'POST')
  }

  /** @throws AdminApiError for an error answer; fetch's TypeError when the server cannot be reached. */
  private async call<T>(path: string, method = 'GET'): Promise<T> {
    const response = await fetch(new URL(path, this.base), { method, headers: this.token ? { Authorization: `Bearer ${this.token}` } : {} })
    const text = await response.text()
    let body: { error?: { code?: string; message?: string } } | undefined
    try {
      body = JSON.parse(text) as typeof body
    } catch {
      body = undefined
    }
    if (!response.ok) {
      throw new AdminApiError(response.status, body?.error?.code ?? `HTTP ${response.status}`, body?.error?.message ?? (text.slice(0, 200) || response.statusText))
    }
    if (body === undefined) throw new AdminApiError(response.status, 'ERR_REQUEST_INVALID', 'The answer is not JSON: is this an apubi-server?')
    return body as T
  }
}
