/**
 * Bench child: the baseline @fastify/http-proxy (the same versions bearer-proxy
 * uses) with a static Authorization header and nothing else.
 * Usage: bare-proxy.mjs UPSTREAM_URL [PORT]; prints `{"port":…}` on stdout.
 */
import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'

const upstream = process.argv[2]
if (upstream === undefined) throw new Error('usage: bare-proxy UPSTREAM_URL [PORT]')
const port = Number(process.argv[3] ?? 0)

const app = Fastify({ logger: false })
await app.register(httpProxy, {
  upstream,
  prefix: '/bare',
  replyOptions: {
    rewriteRequestHeaders: (_request, headers) => ({ ...headers, authorization: 'Bearer static-token' })
  }
})
await app.listen({ host: '127.0.0.1', port })
process.stdout.write(`${JSON.stringify({ port: (app.server.address() as AddressInfo).port })}\n`)
