import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'
import { jsonError, socketExchange } from './security-helpers.js'

/**
 * DNS rebinding against the admin port: a hostile page whose name now
 * resolves to 127.0.0.1 could read /routes and /metrics, or make /readyz
 * request tokens. The admin port takes the proxy port's Host allow-list, plus
 * IP literals (a rebound name cannot produce one), on every path.
 */
const ADMIN_REQUESTS: Array<[string, string]> = [
  ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/metrics'], ['GET', '/routes'], ['GET', '/'],
  ['GET', '/no-such-page'], ['POST', '/routes/api/renew'], ['DELETE', '/routes/api/token'], ['OPTIONS', '/routes']
]

async function setup (t: TestContext) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    security: { allowedHosts: ['metrics.internal', 'Scraper.Example.Test:9901'] },
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  })
  const adminUrl = server.adminUrl as string
  return { tokens, upstream, server, adminUrl, port: Number(new URL(adminUrl).port) }
}

test('a foreign Host is refused with 403 HOST_NOT_ALLOWED on every admin path, before any token work', async (t) => {
  const { tokens, upstream, adminUrl, port } = await setup(t)
  const foreign = [
    'evil.example', `evil.example:${port}`, 'localhost.evil.example', `localhost.evil.example:${port}`,
    '127.0.0.1.evil.example', '[::1].evil.example', '10.0.0.1.nip.io',
    // Not IP literals, though some resolvers read them as addresses.
    '2130706433', '0x7f000001', '[::1', '[evil.example]', '[::1]x',
    // An allowedHosts entry with a port allows that port only.
    'scraper.example.test', 'scraper.example.test:80',
    'localhost:evil', 'localhost:80:81'
  ]
  for (const host of foreign) {
    for (const [method, path] of ADMIN_REQUESTS) {
      const res = await rawRequest(adminUrl, { method, path, headers: { host } })
      assert.equal(res.status, 403, `${method} ${path} with Host ${host}`)
      assert.match(String(res.headers['content-type']), /^application\/json/)
      assert.equal(errorBody(res).code, 'HOST_NOT_ALLOWED', `${method} ${path} with Host ${host}`)
      assert.equal(res.headers['access-control-allow-origin'], undefined)
    }
  }
  assert.equal(tokens.calls.length, 0, 'no token was requested')
  assert.equal(upstream.requests.length, 0)
})

test('a request without Host is refused with the JSON error too', async (t) => {
  const { tokens, adminUrl } = await setup(t)
  const http10 = await socketExchange(adminUrl, 'GET /readyz HTTP/1.0\r\n\r\n')
  assert.equal(http10.status, 403)
  assert.equal(jsonError(http10.body)?.code, 'HOST_NOT_ALLOWED')
  const missing = await socketExchange(adminUrl, 'GET /routes HTTP/1.1\r\nConnection: close\r\n\r\n')
  assert.equal(missing.status, 403)
  assert.equal(jsonError(missing.body)?.code, 'HOST_NOT_ALLOWED')
  assert.equal(tokens.calls.length, 0)
})

test('loopback names, IP literals (probes and scrapers using the pod address) and allowedHosts are accepted', async (t) => {
  const { adminUrl, port } = await setup(t)
  const accepted = [
    'localhost', `localhost:${port}`, `LocalHost:${port}`, '127.0.0.1', `127.0.0.1:${port}`, '[::1]', `[::1]:${port}`,
    // IP literals of other machines' view of this one: a pod address, a LAN address, IPv6.
    '10.1.2.3', '10.1.2.3:9901', '192.0.2.7:8080', '[2001:db8::7]', '[2001:DB8::7]:9901', '[::ffff:10.1.2.3]', '0.0.0.0:9901',
    'metrics.internal', 'metrics.internal:9901', 'METRICS.internal', 'scraper.example.test:9901'
  ]
  for (const host of accepted) {
    for (const path of ['/healthz', '/routes', '/metrics']) {
      const res = await rawRequest(adminUrl, { path, headers: { host } })
      assert.equal(res.status, 200, `${path} with Host ${host}: ${res.body.toString()}`)
      assert.equal(res.headers['access-control-allow-origin'], undefined)
    }
  }
})

test('the proxy port does not take IP literals: only the admin port may', async (t) => {
  const { server } = await setup(t)
  const res = await rawRequest(server.url, { path: '/api/x', headers: { host: '10.1.2.3:8080' } })
  assert.equal(res.status, 403)
  assert.equal(errorBody(res).code, 'HOST_NOT_ALLOWED')
})
