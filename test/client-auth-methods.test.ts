import { after, before, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { recordingUpstream, startProxy } from './helpers.js'
import { startOidcProvider, type OidcFixture } from './fixtures/oidc-provider.js'

// One real oidc-provider for the file: each client is registered for exactly one auth method.
let oidc: OidcFixture
before(async () => { oidc = await startOidcProvider() })
after(() => oidc.close())

/** client_credentials through the proxy; returns the bearer token the upstream received. */
async function tokenThroughProxy (t: TestContext, auth: Record<string, unknown>): Promise<string> {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: oidc.tokenUrl, ...auth } } }
  })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  assert.equal(upstream.requests.length, 1)
  const match = /^Bearer (\S+)$/.exec(upstream.requests[0]?.headers.authorization ?? '')
  assert.ok(match, 'upstream got a Bearer token')
  return match[1] as string
}

async function assertProviderJwt (token: string, clientId: string): Promise<void> {
  const jwks = createRemoteJWKSet(new URL(oidc.jwksUrl))
  const { payload } = await jwtVerify(token, jwks, { issuer: oidc.issuer, audience: oidc.audience })
  assert.equal(payload.client_id, clientId)
}

test('client_secret_basic', async (t) => {
  const { clientId, clientSecret } = oidc.clients.basic
  const token = await tokenThroughProxy(t, { clientId, clientSecret, clientAuth: 'client_secret_basic' })
  await assertProviderJwt(token, clientId)
})

test('client_secret_basic is the default for a form body', async (t) => {
  // The fixture refuses the basic client when its secret comes in the body, so success proves the default.
  const { clientId, clientSecret } = oidc.clients.basic
  const token = await tokenThroughProxy(t, { clientId, clientSecret })
  await assertProviderJwt(token, clientId)
})

test('client_secret_post', async (t) => {
  const { clientId, clientSecret } = oidc.clients.post
  const token = await tokenThroughProxy(t, { clientId, clientSecret, clientAuth: 'client_secret_post' })
  await assertProviderJwt(token, clientId)
})

test('client_secret_jwt', async (t) => {
  const { clientId, clientSecret } = oidc.clients.secretJwt
  const token = await tokenThroughProxy(t, { clientId, clientSecret, clientAuth: 'client_secret_jwt' })
  await assertProviderJwt(token, clientId)
})

test('private_key_jwt with a PEM private key', async (t) => {
  const { clientId, privateKeyPem } = oidc.clients.privateKeyJwt
  const token = await tokenThroughProxy(t, { clientId, privateKey: privateKeyPem, clientAuth: 'private_key_jwt' })
  await assertProviderJwt(token, clientId)
})

test('private_key_jwt with a JWK object', async (t) => {
  const { clientId, privateJwk } = oidc.clients.privateKeyJwt
  const token = await tokenThroughProxy(t, { clientId, privateKey: { ...privateJwk }, clientAuth: 'private_key_jwt' })
  await assertProviderJwt(token, clientId)
})

test('a wrong secret is 502 TOKEN_REJECTED naming invalid_client, without the secret', async (t) => {
  const upstream = await recordingUpstream(t)
  const wrongSecret = 'wrong-secret-CANARY-7f3a9c'
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: oidc.tokenUrl, clientId: oidc.clients.basic.clientId, clientSecret: wrongSecret } } }
  })
  const res = await fetch(`${proxy.url}/api/things`)
  const text = await res.text()
  assert.equal(res.status, 502)
  const body = JSON.parse(text) as { error: { code: string, message: string, route?: string } }
  assert.equal(body.error.code, 'TOKEN_REJECTED')
  assert.equal(body.error.route, 'api')
  assert.match(body.error.message, /invalid_client/)
  assert.ok(!text.includes(wrongSecret), 'the secret is not in the error body')
  assert.ok(!proxy.logs.text().includes(wrongSecret), 'the secret is not logged')
  assert.equal(upstream.requests.length, 0, 'nothing reaches the upstream without a token')
})
