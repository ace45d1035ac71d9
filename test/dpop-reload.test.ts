import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose'
import { buildApp } from '../src/app.js'
import { parseConfig } from '../src/config/load.js'
import { createLogger } from '../src/logger.js'
import { LogSink, recordingUpstream, sendJson, tokenServer } from './helpers.js'

test('a reload that keeps a route\'s broker keeps its DPoP key: its bound token is still proven, not renewed', async (t) => {
  const tokens = await tokenServer(t, (_c, n, res) => { sendJson(res, 200, { access_token: `token-${n}`, token_type: 'DPoP', expires_in: 3600 }) })
  const upstream = await recordingUpstream(t)
  const input = { admin: false, routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'c', clientSecret: 'reload-secret-12', dpop: true } } } }
  const logger = createLogger({ level: 'silent', destination: new LogSink() })
  const first = await buildApp(parseConfig(input, { env: {} }), { logger })
  // The first app's token, bound to its key before the reload.
  await first.brokers.get('api')?.token()
  const second = await buildApp(parseConfig(input, { env: {} }), { logger, previous: first })
  t.after(() => second.close())
  await first.handOver(second)
  assert.equal(second.dpop.get('api'), first.dpop.get('api'))

  await second.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (second.app.server.address() as AddressInfo).port
  const res = await fetch(`http://127.0.0.1:${port}/api/x`)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.equal(tokens.calls.length, 1)
  const tokenProof = decodeProtectedHeader(String(tokens.calls[0]?.headers.dpop))
  const requestProof = decodeProtectedHeader(String(upstream.requests[0]?.headers.dpop))
  assert.equal(await calculateJwkThumbprint(requestProof.jwk as JWK), await calculateJwkThumbprint(tokenProof.jwk as JWK))
})
