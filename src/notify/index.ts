// Public API of notify/: signed notifications of task events to webhook receivers, from the outbox.
export { notificationDocument } from './document.js'
export type { NotificationDocument } from './document.js'
export { Notifier } from './notifier.js'
export type { NotifierOptions, Webhook } from './notifier.js'
export { signatureHeaders, verifySignature } from './sign.js'
