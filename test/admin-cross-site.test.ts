import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'

/**
 * Cross-site requests against the admin port: `<img src=http://127.0.0.1:9901/readyz>`
 * on any page makes the browser send a GET that needs no CORS, and /readyz
 * requests tokens. Every browser request from another site (or another port
 * of localhost) is refused, reads included; the admin grants no CORS access.
 */
async function setup (t: TestContext) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    // allowedOrigins are the proxy port's business, not the admin's.
    security: { allowedOrigins: ['http://localhost:3000'] },
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  })
  const adminUrl = server.adminUrl as string
  return { tokens, adminUrl, port: Number(new URL(adminUrl).port) }
}

test('a cross-site request to /readyz is refused with 403 ORIGIN_NOT_ALLOWED and requests no token', async (t) => {
  const { tokens, adminUrl, port } = await setup(t)
  const crossSite: Array<[string, Record<string, string>]> = [
    // What an <img> or a no-cors fetch sends: no Origin on a GET, but Sec-Fetch-Site.
    ['an <img> on another site', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }],
    ['a page on another port of localhost', { 'sec-fetch-site': 'same-site', origin: 'http://localhost:3000' }],
    ['a fetch from another site', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }],
    ['an Origin alone (older browsers)', { origin: 'https://evil.example' }],
    ['an allowedOrigins entry of the proxy port', { origin: 'http://localhost:3000' }],
    ['the admin address on another port', { origin: `http://127.0.0.1:${port + 1}` }],
    ['the admin address over https', { origin: `https://127.0.0.1:${port}` }],
    ['a sandboxed frame or file: page', { origin: 'null' }],
    ['a top-level navigation from another site', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }]
  ]
  for (const [what, headers] of crossSite) {
    const res = await rawRequest(adminUrl, { path: '/readyz', headers })
    assert.equal(res.status, 403, what)
    assert.equal(errorBody(res).code, 'ORIGIN_NOT_ALLOWED', what)
    assert.equal(res.headers['access-control-allow-origin'], undefined, `${what}: no CORS grant`)
  }
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('cross-site reads and actions are refused on every admin path, preflights get no CORS grant', async (t) => {
  const { tokens, adminUrl } = await setup(t)
  const requests: Array<[string, string]> = [
    ['GET', '/routes'], ['GET', '/metrics'], ['GET', '/healthz'], ['GET', '/'],
    ['POST', '/routes/api/renew'], ['DELETE', '/routes/api/token']
  ]
  for (const [method, path] of requests) {
    const res = await rawRequest(adminUrl, { method, path, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })
    assert.equal(res.status, 403, `${method} ${path}`)
    assert.equal(errorBody(res).code, 'ORIGIN_NOT_ALLOWED', `${method} ${path}`)
    assert.equal(res.headers['access-control-allow-origin'], undefined)
  }
  const preflight = await rawRequest(adminUrl, {
    method: 'OPTIONS',
    path: '/routes/api/renew',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-private-network': 'true' }
  })
  assert.equal(preflight.status, 403)
  for (const name of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-private-network']) {
    assert.equal(preflight.headers[name], undefined, name)
  }
  assert.equal(tokens.calls.length, 0)
})

test('probes, scrapers, a typed URL and the admin\'s own pages pass, without any CORS header', async (t) => {
  const { tokens, adminUrl, port } = await setup(t)
  const passing: Array<[string, Record<string, string>]> = [
    ['curl or a probe', {}],
    ['a URL typed in the address bar', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' }],
    ['a fetch from the admin page itself', { origin: adminUrl, 'sec-fetch-site': 'same-origin' }],
    ['the admin page reached as localhost', { host: `localhost:${port}`, origin: `http://localhost:${port}`, 'sec-fetch-site': 'same-origin' }]
  ]
  for (const [what, headers] of passing) {
    const res = await rawRequest(adminUrl, { path: '/readyz', headers })
    assert.equal(res.status, 200, `${what}: ${res.body.toString()}`)
    assert.equal(res.headers['access-control-allow-origin'], undefined, what)
  }
  assert.equal(tokens.calls.length, 1, 'readiness obtained the token once')
})
