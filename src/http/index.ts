// Public API of http/: the HTTP(S) server of the endpoint, its limits and its TLS.
export { createEdgeServer } from './server.js'
export type { EdgeServer, EdgeServerOptions } from './server.js'
export type { TlsFiles } from './tls.js'
