import type { Delivery } from './outbox.js'

/** A delivery row as either store reads it. */
export type DeliveryRow = Record<string, unknown>

const optional = <T>(value: unknown): T | undefined => (value === null || value === undefined ? undefined : (value as T))

export function toDelivery(row: DeliveryRow): Delivery {
  const lastStatus = optional<number>(row['last_status'])
  const lastError = optional<string>(row['last_error'])
  const deliveredAt = optional<number>(row['delivered_at'])
  return {
    id: row['id'] as string,
    taskId: row['task_id'] as string,
    event: row['event'] as Delivery['event'],
    receiver: row['receiver'] as string,
    document: row['document'] as string,
    state: row['state'] as Delivery['state'],
    attempts: Number(row['attempts']),
    nextAt: Number(row['next_at']),
    leaseToken: Number(row['lease_token']),
    ...(lastStatus !== undefined && { lastStatus: Number(lastStatus) }),
    ...(lastError !== undefined && { lastError }),
    createdAt: Number(row['created_at']),
    updatedAt: Number(row['updated_at']),
    ...(deliveredAt !== undefined && { deliveredAt: Number(deliveredAt) }),
  }
}
