/**
 * Bench child: the npm `http-proxy` baseline, a keep-alive agent and a
 * proxyReq handler that sets a static Authorization header.
 * Usage: http-proxy.mjs UPSTREAM_URL; prints `{"port":…}` on stdout.
 */
import { Agent, createServer, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import httpProxy from 'http-proxy'

const target = process.argv[2]
if (target === undefined) throw new Error('usage: http-proxy UPSTREAM_URL')

const proxy = httpProxy.createProxyServer({ target, agent: new Agent({ keepAlive: true }) })
proxy.on('proxyReq', (proxyReq) => {
  proxyReq.setHeader('authorization', 'Bearer static-token')
})
proxy.on('error', (err, _req, res) => {
  if (!(res instanceof ServerResponse)) return
  if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ error: err.message }))
})

const server = createServer((req, res) => proxy.web(req, res))
server.keepAliveTimeout = 120_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
})
