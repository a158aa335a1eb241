// The reference for GetTaskStatus: the fastest node:http can answer the same bytes, with the same
// headers, over the same kind of connection. argv[2] is the body, base64.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exitWithParent } from './child.js'

const body = Buffer.from(process.argv[2] ?? '', 'base64')
const headers = { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': body.length }
// No reading of the request body: node discards it; this is the upper bound, not a model server.
const server = createServer((_req, res) => res.writeHead(200, headers).end(body))
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })))
exitWithParent()
