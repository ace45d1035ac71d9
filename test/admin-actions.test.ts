import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { buildAdminApp, type RouteView } from '../src/admin/app.js'
import { fingerprint } from '../src/auth/redaction.js'
import { createLogger } from '../src/logger.js'
import { tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, LogSink, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'
import { tokenFile, tokenFiles } from './state-files.js'

/**
 * The admin port's actions: `POST /routes/NAME/renew` renews a route's token
 * now, `DELETE /routes/NAME/token` forgets it (memory and store). Both go
 * through the broker's usual paths, and both are refused for a foreign Host
 * and for any cross-site browser request.
 */
async function setup (t: TestContext, options: { stateDir?: string, refuse?: () => boolean } = {}) {
  const tokens = await tokenServer(t, (_call, n, res) => {
    if (options.refuse?.() === true) return sendJson(res, 400, { error: 'invalid_client', error_description: 'client disabled' })
    sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 })
  })
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl), other: clientCredentialsRoute(upstream.url, tokens.tokenUrl, { prefix: '/other' }) }
  })
  const adminUrl = server.adminUrl as string
  const send = async (): Promise<string | undefined> => {
    const res = await call(`${server.url}/api/x`)
    assert.equal(res.status, 200, res.text)
    return tokenOf(upstream.requests.at(-1))
  }
  const view = async (name = 'api'): Promise<RouteView> => ((await call(`${adminUrl}/routes`)).json.routes as RouteView[]).find((r) => r.name === name) as RouteView
  return { tokens, upstream, server, adminUrl, send, view }
}

test('POST /routes/NAME/renew makes one token request and answers the new state; the next request carries the new token', async (t) => {
  const s = await setup(t)
  assert.equal(await s.send(), 'token-1')
  const res = await call(`${s.adminUrl}/routes/api/renew`, { method: 'POST' })
  assert.equal(res.status, 200, res.text)
  assert.equal(s.tokens.calls.length, 2, 'exactly one token request')
  const route = res.json.route as RouteView
  assert.equal(route.name, 'api')
  assert.equal(route.state, 'valid')
  assert.equal(route.fingerprint, fingerprint('token-2'))
  assert.deepEqual(route.tokenRequests, { total: 2, failed: 0 })
  assert.ok(!res.text.includes('token-2'), 'the answer carries no token')
  assert.equal(await s.send(), 'token-2')
  assert.equal(s.tokens.calls.length, 2)
  assert.ok(s.server.logs.lines.some((l) => l.event === 'renew_requested' && l.route === 'api'), 'the action is logged')
})

test('renew: concurrent asks share one token request (single flight)', async (t) => {
  const s = await setup(t)
  const answers = await Promise.all([1, 2, 3].map(() => call(`${s.adminUrl}/routes/api/renew`, { method: 'POST' })))
  for (const res of answers) assert.equal(res.status, 200, res.text)
  assert.equal(s.tokens.calls.length, 1)
  assert.equal(await s.send(), 'token-1')
})

test('renew: a refused token request answers 502 TOKEN_REJECTED, the route shows the error; a renew after the fix needs no backoff wait', async (t) => {
  let refuse = true
  const s = await setup(t, { refuse: () => refuse })
  const res = await rawRequest(s.adminUrl, { method: 'POST', path: '/routes/api/renew' })
  assert.equal(res.status, 502)
  assert.equal(errorBody(res).code, 'TOKEN_REJECTED')
  assert.match(errorBody(res).message, /client disabled/)
  assert.ok(!res.body.toString().includes('test-client-secret-value'))
  const failing = await s.view()
  assert.equal(failing.state, 'failing')
  assert.match(failing.lastError ?? '', /client disabled/)
  assert.ok(failing.lastErrorAt !== null && Math.abs(Date.parse(failing.lastErrorAt) - Date.now()) < 10_000, `lastErrorAt ${failing.lastErrorAt}`)
  assert.deepEqual(failing.tokenRequests, { total: 1, failed: 1 })

  // A request now would get the backed-off error; a person asking to renew is not made to wait for it.
  refuse = false
  const renewed = await call(`${s.adminUrl}/routes/api/renew`, { method: 'POST' })
  assert.equal(renewed.status, 200, renewed.text)
  assert.equal(renewed.json.route.state, 'valid')
  assert.equal(renewed.json.route.lastError, null)
  assert.equal(renewed.json.route.lastErrorAt, null)
  assert.equal(s.tokens.calls.length, 2)
})

test('DELETE /routes/NAME/token forgets the token in memory and in the store; the next request obtains a new one', async (t) => {
  const dir = join(tempDir(t), 'state')
  const s = await setup(t, { stateDir: dir })
  assert.equal(await s.send(), 'token-1')
  const file = tokenFile(dir, 'api')

  const res = await call(`${s.adminUrl}/routes/api/token`, { method: 'DELETE' })
  assert.equal(res.status, 200, res.text)
  assert.equal(res.json.route.state, 'cold')
  assert.equal(res.json.route.fingerprint, null)
  assert.equal(res.json.route.expiresIn, null)
  assert.ok(!existsSync(file), 'the store no longer has it')
  assert.equal(s.tokens.calls.length, 1, 'forgetting asks for nothing')

  assert.equal(await s.send(), 'token-2', 'the next request obtains a new token')
  assert.equal(s.tokens.calls.length, 2)
  assert.ok(existsSync(file), 'and stores it')
  assert.ok(s.server.logs.lines.some((l) => l.event === 'token_forgotten' && l.route === 'api'))
})

test('DELETE /routes/NAME/token without a stateDir: the in-memory store does not hand the forgotten token back', async (t) => {
  const s = await setup(t)
  assert.equal(await s.send(), 'token-1')
  assert.equal((await call(`${s.adminUrl}/routes/api/token`, { method: 'DELETE' })).status, 200)
  assert.equal(await s.send(), 'token-2')
})

test('a forgotten token\'s route goes cold: its renewal timer is cancelled, no token request until its next request', async (t) => {
  const clock = new ManualClock()
  const start = clock.ms
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: 300 }))
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now, timers: clock })
  const admin = await buildAdminApp(() => proxy, createLogger({ level: 'silent', destination: new LogSink() }), clock.now)
  await admin.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => admin.close())
  const adminUrl = `http://127.0.0.1:${(admin.server.address() as AddressInfo).port}`

  assert.equal((await call(`${proxy.url}/api/x`)).status, 200)
  assert.equal(clock.pending, 1, 'the renewal timer is set')
  const res = await call(`${adminUrl}/routes/api/token`, { method: 'DELETE' })
  assert.equal(res.status, 200)
  assert.equal(res.json.route.state, 'cold')
  assert.equal(clock.pending, 0, 'no renewal timer left')
  clock.ms = start + 3600_000
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(tokens.calls.length, 1, 'a cold route makes no token request')
  assert.equal((await call(`${adminUrl}/routes`)).json.routes[0].state, 'cold')
  assert.equal((await call(`${proxy.url}/api/x`)).status, 200)
  assert.equal(tokenOf(upstream.requests.at(-1)), 'token-2')
})

test('renew and forget of an unknown route: 404 ROUTE_NOT_FOUND naming the routes', async (t) => {
  const s = await setup(t)
  for (const [method, path] of [['POST', '/routes/nope/renew'], ['DELETE', '/routes/nope/token']] as const) {
    const res = await rawRequest(s.adminUrl, { method, path })
    assert.equal(res.status, 404, `${method} ${path}`)
    assert.equal(errorBody(res).code, 'ROUTE_NOT_FOUND')
    assert.match(errorBody(res).message, /"nope".*api, other/)
  }
  assert.equal(s.tokens.calls.length, 0)
})

test('renew and forget are refused for a foreign Host and for cross-site browser requests, and do nothing', async (t) => {
  const dir = join(tempDir(t), 'state')
  const s = await setup(t, { stateDir: dir })
  assert.equal(await s.send(), 'token-1')
  const port = new URL(s.adminUrl).port
  const refused: Array<[string, Record<string, string>, string]> = [
    ['a rebound DNS name', { host: `evil.example:${port}` }, 'HOST_NOT_ALLOWED'],
    ['a page of another site', { origin: 'http://evil.example' }, 'ORIGIN_NOT_ALLOWED'],
    ['a cross-site request without Origin', { 'sec-fetch-site': 'cross-site' }, 'ORIGIN_NOT_ALLOWED'],
    ['a page on another port of localhost', { origin: `http://127.0.0.1:${Number(port) + 1}`, 'sec-fetch-site': 'same-site' }, 'ORIGIN_NOT_ALLOWED']
  ]
  for (const [what, headers, code] of refused) {
    for (const [method, path] of [['POST', '/routes/api/renew'], ['DELETE', '/routes/api/token']] as const) {
      const res = await rawRequest(s.adminUrl, { method, path, headers })
      assert.equal(res.status, 403, `${what}: ${method} ${path}`)
      assert.equal(errorBody(res).code, code, `${what}: ${method} ${path}`)
      assert.equal(res.headers['access-control-allow-origin'], undefined)
    }
  }
  assert.equal(s.tokens.calls.length, 1, 'no token request')
  assert.equal(tokenFiles(dir, 'api').length, 1, 'nothing forgotten')
  assert.equal((await s.view()).fingerprint, fingerprint('token-1'))

  // The status page itself (same origin) may.
  const own = await rawRequest(s.adminUrl, { method: 'POST', path: '/routes/api/renew', headers: { origin: s.adminUrl, 'sec-fetch-site': 'same-origin' } })
  assert.equal(own.status, 200, own.body.toString())
  assert.equal(s.tokens.calls.length, 2)
})
