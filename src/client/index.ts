// Public API of client/: an APUBI client that speaks as the WFM does.
export { ApubiClient, ApubiFault } from './apubi-client.js'
export type { ApubiAnswer, TaskStatus } from './apubi-client.js'
