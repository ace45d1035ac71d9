import { test } from 'node:test'
import assert from 'node:assert/strict'
import { recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { call } from './token-lifecycle-helpers.js'
import type { RouteView } from '../src/admin/app.js'
import { fingerprint } from '../src/auth/redaction.js'
import { canary, issuingTokenServer, startTestServer } from './operability-helpers.js'

const ADMIN = { host: '127.0.0.1', port: 0 }

function ccAuth (tokenUrl: string, clientSecret = 'admin-test-secret'): Record<string, unknown> {
  return { type: 'client_credentials', tokenUrl, clientId: 'admin-client', clientSecret }
}

test('GET /healthz answers 200 on the admin port, which is not the proxy port', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, { admin: ADMIN, routes: { api: { upstream: upstream.url, auth: ccAuth(tokens.tokenUrl) } } })
  assert.ok(server.adminUrl !== undefined)
  assert.notEqual(server.adminUrl, server.url)

  const health = await call(`${server.adminUrl}/healthz`)
  assert.equal(health.status, 200)
  assert.deepEqual(health.json, { status: 'ok' })
  // Health needs no token: nothing was asked of the token endpoint.
  assert.equal(tokens.calls.length, 0)
  // The admin paths are not mixed into the proxy's own namespace.
  const onProxy = await call(`${server.url}/healthz`)
  assert.equal(onProxy.status, 404)
  assert.equal(onProxy.json.error.code, 'ROUTE_NOT_FOUND')
})

test('GET /readyz answers 200 with per-route JSON when every route can get a token', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: ADMIN,
    routes: {
      one: { upstream: upstream.url, auth: ccAuth(tokens.tokenUrl) },
      two: { upstream: upstream.url, auth: { ...ccAuth(tokens.tokenUrl), clientId: 'other-client' } },
      fixed: { upstream: upstream.url, auth: { type: 'static', token: 'static-admin-token' } }
    }
  })
  const ready = await call(`${server.adminUrl}/readyz`)
  assert.equal(ready.status, 200)
  assert.equal(ready.json.status, 'ready')
  assert.deepEqual(ready.json.routes, { one: { ready: true }, two: { ready: true }, fixed: { ready: true } })
  // Readiness really obtained the tokens (one per OAuth route), so the first request does not wait.
  assert.equal(tokens.calls.length, 2)
})

test('GET /readyz answers 503 naming the route whose token endpoint refuses', async (t) => {
  const tokens = await tokenServer(t)
  const refusing = await tokenServer(t, (_call, _n, res) => sendJson(res, 401, { error: 'invalid_client', error_description: 'unknown client' }))
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: ADMIN,
    routes: {
      good: { upstream: upstream.url, auth: ccAuth(tokens.tokenUrl) },
      broken: { upstream: upstream.url, auth: ccAuth(refusing.tokenUrl) }
    }
  })
  const ready = await call(`${server.adminUrl}/readyz`)
  assert.equal(ready.status, 503)
  assert.equal(ready.json.status, 'not ready')
  assert.deepEqual(Object.keys(ready.json.routes).sort(), ['broken', 'good'])
  assert.deepEqual(ready.json.routes.good, { ready: true })
  assert.equal(ready.json.routes.broken.ready, false)
  assert.equal(typeof ready.json.routes.broken.error, 'string')
  assert.match(ready.json.routes.broken.error, /unknown client|invalid_client/)
  assert.equal(refusing.calls.length, 1)
})

test('GET /routes shows each route\'s prefix, upstream, auth type, token state and fingerprint, never a token or secret', async (t) => {
  const clientSecret = canary('client-secret')
  const tokens = await issuingTokenServer(t)
  const { issued, refreshTokens } = tokens
  const refusing = await tokenServer(t, (_call, _n, res) => sendJson(res, 400, { error: 'invalid_client', error_description: 'client disabled' }))
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: ADMIN,
    routes: {
      api: { prefix: '/v1/api', upstream: `${upstream.url}/base`, auth: ccAuth(tokens.tokenUrl, clientSecret) },
      broken: { upstream: upstream.url, auth: ccAuth(refusing.tokenUrl, clientSecret) },
      idle: { upstream: upstream.url, auth: ccAuth(tokens.tokenUrl, clientSecret) }
    }
  })

  const before = Date.now()
  const ok = await call(`${server.url}/v1/api/things`)
  assert.equal(ok.status, 200)
  const refused = await call(`${server.url}/broken/things`)
  assert.equal(refused.status, 502)
  const after = Date.now()

  const res = await call(`${server.adminUrl}/routes`)
  assert.equal(res.status, 200)
  const routes = res.json.routes as RouteView[]
  assert.deepEqual(routes.map((r) => r.name), ['api', 'broken', 'idle'])
  const [api, broken, idle] = routes as [RouteView, RouteView, RouteView]

  assert.equal(issued.length, 1)
  assert.equal(api.prefix, '/v1/api')
  assert.equal(api.upstream, `${upstream.url}/base`)
  assert.equal(api.auth, 'client_credentials')
  assert.equal(api.state, 'valid')
  assert.equal(api.fingerprint, fingerprint(issued[0] as string))
  assert.match(api.fingerprint ?? '', /^[0-9a-f]{8}$/)
  assert.ok(api.expiresIn !== null && api.expiresIn > 3590 && api.expiresIn <= 3600, `expiresIn ${api.expiresIn}`)
  const expiresAt = Date.parse(api.expiresAt ?? '')
  assert.ok(expiresAt >= before + 3600_000 - 1000 && expiresAt <= after + 3600_000 + 1000, `expiresAt ${api.expiresAt}`)
  const lastRefresh = Date.parse(api.lastRefresh ?? '')
  assert.ok(lastRefresh >= before - 1000 && lastRefresh <= after + 1000, `lastRefresh ${api.lastRefresh}`)
  assert.equal(api.lastError, null)
  assert.equal(api.store, 'none', 'tokens in memory only: no store')

  assert.equal(broken.prefix, '/broken')
  assert.equal(broken.auth, 'client_credentials')
  assert.equal(broken.state, 'failing')
  assert.equal(broken.fingerprint, null)
  assert.equal(broken.expiresAt, null)
  assert.equal(broken.expiresIn, null)
  assert.equal(broken.lastRefresh, null)
  assert.match(broken.lastError ?? '', /client disabled|invalid_client/)

  // A route nobody has used yet has no token and no error.
  assert.equal(idle.state, 'none')
  assert.equal(idle.fingerprint, null)
  assert.equal(idle.lastError, null)

  for (const [what, value] of [['access token', issued[0]], ['refresh token', refreshTokens[0]], ['client secret', clientSecret]] as const) {
    assert.ok(!res.text.includes(value as string), `the ${what} appears in /routes`)
  }
})

test('admin: false starts no admin listener', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, { admin: false, routes: { api: { upstream: upstream.url, auth: ccAuth(tokens.tokenUrl) } } })
  assert.equal(server.adminUrl, undefined)
  // The proxy itself works, and does not take over the admin paths.
  assert.equal((await call(`${server.url}/api/x`)).status, 200)
  for (const path of ['/healthz', '/readyz', '/metrics', '/routes']) {
    const res = await call(`${server.url}${path}`)
    assert.equal(res.status, 404, path)
    assert.equal(res.json.error.code, 'ROUTE_NOT_FOUND', path)
  }
})
