// Public API of observability/: the logger and the one redaction every output uses.
export { createLogger } from './logger.js'
export type { Logger } from './logger.js'
export { redact, REDACTED, secretValuesIn } from './redact.js'
export { thisInstance } from './instance.js'
export type { Instance } from './instance.js'
