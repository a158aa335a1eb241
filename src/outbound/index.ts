// Public API of outbound/: HTTP(S) requests to the outside (CDN APIs, caches, webhook receivers),
// through the location policy.
export { sendOutbound } from './request.js'
export type { OutboundAnswer, OutboundOptions, OutboundPolicy, OutboundRequest } from './request.js'
