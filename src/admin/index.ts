// Public API of admin/: the operators' interface (dashboard, JSON API) and who may use it.
export { createAdminAccess } from './access.js'
export type { AdminAccess, AdminRole, AdminToken } from './access.js'
export { adminGuard, createAdminEdge } from './edge.js'
export type { AdminEdgeOptions } from './edge.js'
export type { BandwidthControl } from './api.js'
