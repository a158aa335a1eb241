// The notification outbox as the task store keeps it: events recorded with the change of state that
// makes them, turned into one delivery per receiver, each sent by one instance under a lease.

/** What a notification speaks of: an attempt started, failed and will be retried, or the task ended. */
export type TaskEventKind = 'start' | 'retry' | 'end'

export interface TaskEvent {
  readonly seq: number
  readonly taskId: string
  readonly event: TaskEventKind
  readonly attempt: number
  readonly at: number
}

export type DeliveryState = 'pending' | 'delivered' | 'failed'

/** One notification to one receiver. `document` is the JSON body sent (no secret in it). */
export interface Delivery {
  readonly id: string
  readonly taskId: string
  readonly event: TaskEventKind
  readonly receiver: string
  readonly document: string
  readonly state: DeliveryState
  readonly attempts: number
  readonly nextAt: number
  /** Fences `settle`: a resend or a newer claim moves it on. */
  readonly leaseToken: number
  /** HTTP status of the last answer; undefined when none came. */
  readonly lastStatus?: number
  /** Why the last attempt failed (redacted). */
  readonly lastError?: string
  readonly createdAt: number
  readonly updatedAt: number
  readonly deliveredAt?: number
}

export type DeliveryResult =
  | { readonly state: 'delivered'; readonly status: number }
  | { readonly state: 'pending'; readonly nextAt: number; readonly status?: number; readonly error: string }
  | { readonly state: 'failed'; readonly status?: number; readonly error: string }

export interface DeliveryQuery {
  readonly state?: DeliveryState
  readonly taskId?: string
  readonly limit: number
  readonly offset: number
}

export interface OutboxStore {
  /** The oldest events not yet turned into deliveries. */
  events(limit: number): Promise<TaskEvent[]>
  /**
   * Turns an event into its deliveries (one per receiver, `document` each) and removes it, at once.
   * False when another instance did so first: then nothing is inserted.
   */
  expand(event: TaskEvent, deliveries: ReadonlyArray<{ readonly receiver: string; readonly document: string }>, now: number): Promise<boolean>
  /** The pending delivery due longest ago, leased to the caller for `leaseMs`, counting an attempt. */
  claim(leaseMs: number, now: number): Promise<Delivery | undefined>
  /** Records how the attempt went; false when the lease was lost (a resend, or its expiry and a new claim). */
  settle(delivery: Delivery, result: DeliveryResult, now: number): Promise<boolean>
  /** Newest first, and how many match in all. */
  list(query: DeliveryQuery): Promise<{ deliveries: Delivery[]; total: number }>
  /** Queues a delivery again from its first attempt; undefined when there is none with that id. */
  resend(id: string, now: number): Promise<Delivery | undefined>
}
