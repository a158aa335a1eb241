// Public API of client/: an APUBI client that speaks as the WFM does, and one of our admin API.
export { AdminApiError, AdminClient } from './admin-client.js'
export type { AdminTask, AdminTaskDetail, AdminTaskFilters, AdminTaskPage } from './admin-client.js'
export { ApubiClient, ApubiFault, usernameToken } from './apubi-client.js'
export type { ApubiAnswer, ClientCredentials, TaskStatus } from './apubi-client.js'
