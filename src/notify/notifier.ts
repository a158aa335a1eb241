import { PublishError } from '../errors.js'
import { redact, type Logger } from '../observability/index.js'
import { sendOutbound, type OutboundOptions } from '../outbound/index.js'
import { wakeableDelay, type Delivery, type TaskEvent, type TaskStore } from '../tasks/index.js'
import { notificationDocument } from './document.js'
import { signatureHeaders } from './sign.js'

/** A receiver of notifications, as the config file's `webhooks` lists them. */
export interface Webhook {
  /** Names the receiver in the outbox, the admin API and metrics: its URL may hold a token. */
  readonly name: string
  readonly url: string
  readonly secret: string
  readonly events: ReadonlyArray<TaskEvent['event']>
}

export interface NotifierOptions {
  readonly webhooks: readonly Webhook[]
  readonly outbound: OutboundOptions
  readonly pollMs: number
  /** A delivery claimed by an instance that died is sent again after this long, ms. */
  readonly leaseMs: number
  readonly maxAttempts: number
  /** Delay before attempt n + 1: `retryDelayMs(n)`. */
  readonly retryDelayMs: (attempt: number) => number
  readonly now: () => number
  readonly logger: Logger
  /** Told of each delivery attempt, for metrics. */
  readonly onAttempt?: (receiver: string, outcome: 'delivered' | 'retry' | 'failed') => void
}

/** Events expanded per round: the rest wait for the next one. */
const EVENTS_PER_ROUND = 100

/**
 * Sends the outbox: turns task events into one delivery per receiver that asked for the event,
 * then sends each due delivery, signed, one at a time, retrying with backoff until a 2xx answer or
 * `maxAttempts`. Runs in every instance; the store decides which one expands an event and which
 * one sends a delivery.
 */
export class Notifier {
  private running = false
  private loop: Promise<void> = Promise.resolve()
  private wakeUp: (() => void) | undefined

  constructor(
    private readonly store: TaskStore,
    private readonly options: NotifierOptions,
  ) {}

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Looks for work now rather than at the next poll (a notification was queued again). */
  wake(): void {
    this.wakeUp?.()
  }

  /** Finishes the delivery in flight, then stops. */
  async stop(): Promise<void> {
    this.running = false
    this.wakeUp?.()
    await this.loop
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.expandEvents()
        while (this.running && (await this.sendOne()));
      } catch (e) {
        this.options.logger.error({ err: e }, 'notifying failed; trying again at the next poll')
      }
      const pause = wakeableDelay(this.options.pollMs)
      this.wakeUp = pause.wake
      await pause.done
      this.wakeUp = undefined
    }
  }

  private async expandEvents(): Promise<void> {
    const { outbox } = this.store
    for (const event of await outbox.events(EVENTS_PER_ROUND)) {
      const receivers = this.options.webhooks.filter((hook) => hook.events.includes(event.event))
      let deliveries: Array<{ receiver: string; document: string }> = []
      const task = receivers.length > 0 ? await this.store.get(event.taskId) : undefined
      if (task) {
        const [files, errors] = await Promise.all([this.store.files(task.id), this.store.errors(task.id)])
        const document = JSON.stringify(notificationDocument(event, task, files, errors))
        deliveries = receivers.map((hook) => ({ receiver: hook.name, document }))
      }
      await outbox.expand(event, deliveries, this.options.now())
    }
  }

  /** Sends the delivery due longest ago; false when none is due. */
  private async sendOne(): Promise<boolean> {
    const { options } = this
    const delivery = await this.store.outbox.claim(options.leaseMs, options.now())
    if (!delivery) return false
    const hook = options.webhooks.find((h) => h.name === delivery.receiver)
    const log = options.logger.child({ deliveryId: delivery.id, taskId: delivery.taskId, receiver: delivery.receiver, attempt: delivery.attempts })
    if (!hook) {
      await this.store.outbox.settle(delivery, { state: 'failed', error: `No receiver named ${delivery.receiver} is configured any more` }, options.now())
      log.warn('notification dropped: its receiver is no longer configured')
      return true
    }
    const outcome = await this.attempt(delivery, hook)
    const now = options.now()
    if (outcome.ok) {
      await this.store.outbox.settle(delivery, { state: 'delivered', status: outcome.status! }, now)
      log.info({ status: outcome.status }, 'notification delivered')
      options.onAttempt?.(hook.name, 'delivered')
      return true
    }
    const status = outcome.status === undefined ? {} : { status: outcome.status }
    if (delivery.attempts >= options.maxAttempts) {
      await this.store.outbox.settle(delivery, { state: 'failed', error: outcome.error, ...status }, now)
      log.warn({ error: outcome.error }, 'notification given up after its last attempt')
      options.onAttempt?.(hook.name, 'failed')
    } else {
      await this.store.outbox.settle(delivery, { state: 'pending', nextAt: now + options.retryDelayMs(delivery.attempts), error: outcome.error, ...status }, now)
      log.warn({ error: outcome.error }, 'notification failed; will retry')
      options.onAttempt?.(hook.name, 'retry')
    }
    return true
  }

  private async attempt(delivery: Delivery, hook: Webhook): Promise<{ ok: boolean; status?: number; error: string }> {
    const timestampS = Math.floor(this.options.now() / 1000)
    try {
      const answer = await sendOutbound(
        {
          method: 'POST',
          url: hook.url,
          headers: { 'Content-Type': 'application/json', 'User-Agent': 'apubi-server', ...signatureHeaders(delivery.id, timestampS, delivery.document, hook.secret) },
          body: delivery.document,
        },
        this.options.outbound,
      )
      const ok = answer.status >= 200 && answer.status < 300
      return { ok, status: answer.status, error: ok ? '' : `answered ${answer.status}: ${redact(answer.text.slice(0, 200))}` }
    } catch (e) {
      return { ok: false, error: redact(e instanceof PublishError ? e.message : String(e)) }
    }
  }
}
