import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import type { Delivery, DeliveryQuery, DeliveryResult, OutboxStore, TaskEvent } from '../outbox.js'
import { toDelivery, type DeliveryRow } from '../outbox-rows.js'

type Statements = Record<'pendingEvents' | 'takeEvent' | 'insertDelivery' | 'claimDelivery' | 'settleDelivery' | 'listDeliveries' | 'countDeliveries' | 'resendDelivery', Database.Statement>

/** The outbox in the SQLite file: one process owns the file, so expansion and claims never race. */
export class SqliteOutbox implements OutboxStore {
  constructor(
    private readonly db: Database.Database,
    private readonly statements: Statements,
  ) {}

  async events(limit: number): Promise<TaskEvent[]> {
    const rows = this.statements.pendingEvents.all(limit) as Array<{ seq: number; task_id: string; event: TaskEvent['event']; attempt: number; at: number }>
    return rows.map((r) => ({ seq: r.seq, taskId: r.task_id, event: r.event, attempt: r.attempt, at: r.at }))
  }

  async expand(event: TaskEvent, deliveries: ReadonlyArray<{ receiver: string; document: string }>, now: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (this.statements.takeEvent.run(event.seq).changes !== 1) return false
        for (const { receiver, document } of deliveries) {
          this.statements.insertDelivery.run({ id: randomUUID(), seq: event.seq, taskId: event.taskId, event: event.event, receiver, document, now })
        }
        return true
      })
      .immediate()
  }

  async claim(leaseMs: number, now: number): Promise<Delivery | undefined> {
    const row = this.statements.claimDelivery.get({ leaseUntil: now + leaseMs, now }) as DeliveryRow | undefined
    return row && toDelivery(row)
  }

  async settle(delivery: Delivery, result: DeliveryResult, now: number): Promise<boolean> {
    return (
      this.statements.settleDelivery.run({
        id: delivery.id,
        token: delivery.leaseToken,
        state: result.state,
        nextAt: result.state === 'pending' ? result.nextAt : delivery.nextAt,
        status: result.status ?? null,
        error: result.state === 'delivered' ? null : result.error,
        now,
      }).changes === 1
    )
  }

  async list(query: DeliveryQuery): Promise<{ deliveries: Delivery[]; total: number }> {
    const filter = { state: query.state ?? null, taskId: query.taskId ?? null }
    return this.db
      .transaction(() => {
        const rows = this.statements.listDeliveries.all({ ...filter, limit: query.limit, offset: query.offset }) as DeliveryRow[]
        const { total } = this.statements.countDeliveries.get(filter) as { total: number }
        return { deliveries: rows.map(toDelivery), total }
      })
      .deferred()
  }

  async resend(id: string, now: number): Promise<Delivery | undefined> {
    const row = this.statements.resendDelivery.get({ id, now }) as DeliveryRow | undefined
    return row && toDelivery(row)
  }
}
