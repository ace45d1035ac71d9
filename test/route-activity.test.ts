import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { RouteView } from '../src/admin/app.js'
import { RECENT_WINDOW_MS } from '../src/telemetry/activity.js'
import { Metrics } from '../src/telemetry/metrics.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'
import { call, closedPortUrl, ManualClock } from './token-lifecycle-helpers.js'

/**
 * /routes counts, per route, the requests it answered and its errors (5xx),
 * since start and over the last five minutes, and its token requests and
 * their failures: what the status page and `status` show at a glance.
 */
test('/routes counts each route\'s requests, errors and token requests', async (t) => {
  const tokens = await tokenServer(t)
  const refusing = await tokenServer(t, (_call, _n, res) => sendJson(res, 401, { error: 'invalid_client' }))
  const upstream = await recordingUpstream(t, (req, res) => sendJson(res, req.url.endsWith('/boom') ? 500 : 200, {}))
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    routes: {
      api: clientCredentialsRoute(upstream.url, tokens.tokenUrl),
      broken: clientCredentialsRoute(upstream.url, refusing.tokenUrl),
      down: clientCredentialsRoute(await closedPortUrl(), tokens.tokenUrl),
      idle: clientCredentialsRoute(upstream.url, tokens.tokenUrl),
      fixed: { upstream: upstream.url, auth: { type: 'static', token: 'static-key' } }
    }
  })
  for (const path of ['/api/a', '/api/b', '/api/boom', '/api/c', '/broken/a', '/down/a', '/fixed/a', '/nowhere']) await call(`${server.url}${path}`)

  const routes = (await call(`${server.adminUrl}/routes`)).json.routes as RouteView[]
  const of = (name: string): RouteView => routes.find((r) => r.name === name) as RouteView
  assert.deepEqual(of('api').requests, { total: 4, errors: 1, recent: { total: 4, errors: 1, seconds: 300 } })
  assert.deepEqual(of('api').tokenRequests, { total: 1, failed: 0 })
  assert.deepEqual(of('broken').requests, { total: 1, errors: 1, recent: { total: 1, errors: 1, seconds: 300 } })
  assert.deepEqual(of('broken').tokenRequests, { total: 1, failed: 1 })
  assert.deepEqual(of('down').requests, { total: 1, errors: 1, recent: { total: 1, errors: 1, seconds: 300 } }, 'an upstream that cannot be reached is an error')
  assert.deepEqual(of('idle').requests, { total: 0, errors: 0, recent: { total: 0, errors: 0, seconds: 300 } })
  assert.deepEqual(of('idle').tokenRequests, { total: 0, failed: 0 })
  assert.deepEqual(of('fixed').requests, { total: 1, errors: 0, recent: { total: 1, errors: 0, seconds: 300 } })
  assert.deepEqual(of('fixed').tokenRequests, { total: 0, failed: 0 }, 'a static key is no token request')
})

test('recent counts forget requests older than five minutes; totals keep them', () => {
  const clock = new ManualClock()
  const metrics = new Metrics(clock.now)
  metrics.request('api', 'GET', 200, 0.01)
  metrics.request('api', 'GET', 503, 0.01)
  clock.advance(RECENT_WINDOW_MS / 2)
  metrics.request('api', 'POST', 201, 0.01)
  metrics.request(undefined, 'GET', 404, 0.01)
  assert.deepEqual(metrics.activity('api').requests, { total: 3, errors: 1, recent: { total: 3, errors: 1, seconds: 300 } })
  clock.advance(RECENT_WINDOW_MS / 2 + 10_000)
  assert.deepEqual(metrics.activity('api').requests, { total: 3, errors: 1, recent: { total: 1, errors: 0, seconds: 300 } })
  clock.advance(RECENT_WINDOW_MS)
  assert.deepEqual(metrics.activity('api').requests, { total: 3, errors: 1, recent: { total: 0, errors: 0, seconds: 300 } })
  // A slot reused a whole window later starts from zero.
  metrics.request('api', 'GET', 200, 0.01)
  assert.deepEqual(metrics.activity('api').requests.recent, { total: 1, errors: 0, seconds: 300 })
})
