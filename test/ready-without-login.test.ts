import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTestServer } from './operability-helpers.js'

const route = (extra: Record<string, unknown>): Record<string, unknown> => ({
  upstream: 'http://127.0.0.1:9',
  ...extra,
  auth: { type: 'authorization_code', authorizationUrl: 'http://127.0.0.1:9/auth', tokenUrl: 'http://127.0.0.1:9/token', clientId: 'cli' }
})

test('/readyz: a login route without a login is not ready, unless the route says readyWithoutLogin', async (t) => {
  const server = await startTestServer(t, { admin: { host: '127.0.0.1', port: 0 }, routes: { strict: route({}), lenient: route({ readyWithoutLogin: true }) } })
  const res = await fetch(`${server.adminUrl}/readyz`)
  assert.equal(res.status, 503)
  const body = await res.json() as { routes: Record<string, { ready: boolean, error?: string }> }
  assert.equal(body.routes.strict?.ready, false)
  assert.match(body.routes.strict?.error ?? '', /run `bearer-proxy login strict`/)
  assert.equal(body.routes.lenient?.ready, true)

  const routes = await (await fetch(`${server.adminUrl}/routes`)).json() as { routes: Array<{ name: string, state: string }> }
  assert.deepEqual(routes.routes.map((r) => [r.name, r.state]), [['strict', 'login_required'], ['lenient', 'login_required']])
})
