import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { Delivery, DeliveryQuery, DeliveryResult, OutboxStore, TaskEvent } from '../outbox.js'
import { toDelivery, type DeliveryRow } from '../outbox-rows.js'
import * as sql from './sql.js'

type Statement = 'pendingEvents' | 'takeEvent' | 'insertDelivery' | 'claimDelivery' | 'settleDelivery' | 'listDeliveries' | 'countDeliveries' | 'resendDelivery'

/**
 * The outbox on PostgreSQL, shared by every instance: an event is expanded by the instance whose
 * transaction deletes it, a delivery sent by the one whose claim (`SKIP LOCKED`) leased it.
 */
export class PostgresOutbox implements OutboxStore {
  constructor(private readonly pool: pg.Pool) {}

  private query(name: Statement, values: unknown[], client: pg.Pool | pg.PoolClient = this.pool): Promise<pg.QueryResult<DeliveryRow>> {
    return client.query<DeliveryRow>({ name, text: sql[name], values })
  }

  async events(limit: number): Promise<TaskEvent[]> {
    const rows = (await this.query('pendingEvents', [limit])).rows
    return rows.map((r) => ({ seq: Number(r['seq']), taskId: r['task_id'] as string, event: r['event'] as TaskEvent['event'], attempt: Number(r['attempt']), at: Number(r['at']) }))
  }

  async expand(event: TaskEvent, deliveries: ReadonlyArray<{ receiver: string; document: string }>, now: number): Promise<boolean> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      if ((await this.query('takeEvent', [event.seq], client)).rowCount !== 1) {
        await client.query('ROLLBACK')
        return false
      }
      for (const { receiver, document } of deliveries) {
        await this.query('insertDelivery', [randomUUID(), event.seq, event.taskId, event.event, receiver, document, now], client)
      }
      await client.query('COMMIT')
      return true
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      client.release()
    }
  }

  async claim(leaseMs: number, now: number): Promise<Delivery | undefined> {
    const row = (await this.query('claimDelivery', [now + leaseMs, now])).rows[0]
    return row && toDelivery(row)
  }

  async settle(delivery: Delivery, result: DeliveryResult, now: number): Promise<boolean> {
    const values = [
      delivery.id,
      delivery.leaseToken,
      result.state,
      result.state === 'pending' ? result.nextAt : delivery.nextAt,
      result.status ?? null,
      result.state === 'delivered' ? null : result.error,
      now,
    ]
    return (await this.query('settleDelivery', values)).rowCount === 1
  }

  async list(query: DeliveryQuery): Promise<{ deliveries: Delivery[]; total: number }> {
    const filter = [query.state ?? null, query.taskId ?? null]
    const [rows, count] = await Promise.all([this.query('listDeliveries', [...filter, query.limit, query.offset]), this.query('countDeliveries', filter)])
    return { deliveries: rows.rows.map(toDelivery), total: Number(count.rows[0]?.['total'] ?? 0) }
  }

  async resend(id: string, now: number): Promise<Delivery | undefined> {
    const row = (await this.query('resendDelivery', [id, now])).rows[0]
    return row && toDelivery(row)
  }
}
