import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose'
import { startProxy } from './helpers.js'
import { startSeedProxy } from './seed-helpers.js'
import { startDpopResource } from './fixtures/dpop-resource.js'
import { startOidcProvider, type OidcFixture } from './fixtures/oidc-provider.js'

// A real oidc-provider that issues DPoP-bound tokens and demands a nonce in every token request's proof.
let oidc: OidcFixture
before(async () => { oidc = await startOidcProvider({ dpopNonce: true }) })
after(() => oidc.close())

function dpopRoute (upstream: string, dpop: unknown = true): Record<string, unknown> {
  const { clientId, clientSecret } = oidc.clients.basic
  return { upstream, auth: { type: 'client_credentials', tokenUrl: oidc.tokenUrl, clientId, clientSecret, dpop } }
}

test('requests carry DPoP-bound tokens and proofs the resource server accepts, nonces retried once and kept', async (t) => {
  oidc.resetTokenRequests()
  const resource = await startDpopResource(t, { jwksUrl: oidc.jwksUrl, issuer: oidc.issuer, demandNonce: true })
  const proxy = await startProxy(t, { routes: { api: dpopRoute(resource.url) } })

  const first = await fetch(`${proxy.url}/api/things?page=2#frag`)
  assert.equal(first.status, 200, await first.clone().text())
  assert.deepEqual(await first.json(), { ok: true, path: '/things?page=2' })
  // The token endpoint demanded a nonce: the grant went once more with it, then never needed a retry.
  assert.equal(oidc.tokenRequests().total, 2)
  // The resource server demanded one too: a 401 use_dpop_nonce, then the same request with it.
  assert.deepEqual(resource.checks.map((c) => c.outcome), ['nonce demanded', 'ok'])
  assert.equal(resource.checks[1]?.nonce, resource.nonce())

  // The nonce is kept: later requests, any method, pass at the first try; the token is reused.
  const posted = await fetch(`${proxy.url}/api/orders`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } })
  assert.equal(posted.status, 200, await posted.clone().text())
  await posted.arrayBuffer()
  const third = await fetch(`${proxy.url}/api/things`)
  assert.equal(third.status, 200)
  await third.arrayBuffer()
  assert.deepEqual(resource.checks.map((c) => c.outcome), ['nonce demanded', 'ok', 'ok', 'ok'])
  assert.deepEqual(resource.checks.map((c) => c.method), ['GET', 'GET', 'POST', 'GET'])
  assert.equal(oidc.tokenRequests().total, 2)
  // Every proof has its own jti; all come from the route's one key.
  assert.equal(new Set(resource.checks.map((c) => c.jti)).size, 4)
  assert.equal(new Set(resource.checks.map((c) => c.jkt)).size, 1)
  assert.equal(oidc.serverErrors().length, 0)
})

test('a configured key signs the proofs, and the token is bound to its thumbprint', async (t) => {
  const resource = await startDpopResource(t, { jwksUrl: oidc.jwksUrl, issuer: oidc.issuer })
  const key = oidc.jwtBearer.privateKeyPem // an ES256 (P-256) private key, PEM
  const upstreamSeen: Array<{ authorization: string, dpop: string }> = []
  resource.server.prependListener('request', (req) => {
    upstreamSeen.push({ authorization: req.headers.authorization ?? '', dpop: String(req.headers.dpop) })
  })
  const proxy = await startProxy(t, { routes: { api: dpopRoute(resource.url, { alg: 'ES256', key }) } })
  const res = await fetch(`${proxy.url}/api/x`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  const seen = upstreamSeen[0]
  assert.ok(seen !== undefined)
  const header = decodeProtectedHeader(seen.dpop)
  assert.equal(header.typ, 'dpop+jwt')
  assert.equal(header.alg, 'ES256')
  // The public key only: no private member in the proof.
  assert.equal((header.jwk as Record<string, unknown>).d, undefined)
  const expected = await calculateJwkThumbprint({ ...oidc.jwtBearer.privateJwk, d: undefined, kid: undefined, alg: undefined } as never)
  const token = seen.authorization.replace(/^DPoP /, '')
  assert.equal((decodeJwt(token).cnf as { jkt?: string }).jkt, expected)
  assert.equal(decodeJwt(seen.dpop).htu, `${resource.url}/x`)

  // Neither the token, the proof nor the key is in any log line.
  const logs = proxy.logs.text()
  assert.ok(!logs.includes(token))
  assert.ok(!logs.includes(seen.dpop))
  assert.ok(!logs.includes(String(oidc.jwtBearer.privateJwk.d)))
})

test('config/examples/dpop.yaml as shipped gets DPoP-bound tokens the resource server accepts', async (t) => {
  const resource = await startDpopResource(t, { jwksUrl: oidc.jwksUrl, issuer: oidc.issuer, demandNonce: true })
  const { clientId, clientSecret } = oidc.clients.basic
  const proxy = await startSeedProxy(t, 'dpop', { DPOP_API_URL: resource.url, DPOP_TOKEN_URL: oidc.tokenUrl, DPOP_CLIENT_ID: clientId, DPOP_CLIENT_SECRET: clientSecret })
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${proxy.url}/api/things/${i}`)
    assert.equal(res.status, 200, await res.clone().text())
    await res.arrayBuffer()
  }
  assert.deepEqual(resource.checks.map((c) => c.outcome), ['nonce demanded', 'ok', 'ok', 'ok'])
  assert.ok(!proxy.logs.text().includes(clientSecret))
})
