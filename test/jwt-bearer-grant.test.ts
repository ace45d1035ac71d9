import { after, before, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, decodeJwt, exportPKCS8, generateKeyPair, jwtVerify } from 'jose'
import { recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { JWT_BEARER_GRANT, startOidcProvider, type OidcFixture } from './fixtures/oidc-provider.js'

// The fixture checks iss, sub, exp and aud (token URL or issuer) of each RFC 7523 assertion.
let oidc: OidcFixture
before(async () => { oidc = await startOidcProvider() })
after(() => oidc.close())

async function proxyFor (t: TestContext, key: Record<string, unknown>) {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      api: {
        upstream: upstream.url,
        // No `aud` here: it must default to the token URL, or the fixture refuses the assertion.
        auth: { type: 'jwt_bearer', tokenUrl: oidc.tokenUrl, claims: { iss: oidc.jwtBearer.issuer, sub: oidc.jwtBearer.subject }, ...key }
      }
    }
  })
  return { upstream, proxy }
}

async function assertIssuedTokenForwarded (upstream: Awaited<ReturnType<typeof recordingUpstream>>): Promise<void> {
  assert.equal(upstream.requests.length, 1)
  const match = /^Bearer (\S+)$/.exec(upstream.requests[0]?.headers.authorization ?? '')
  assert.ok(match, 'upstream got a Bearer token')
  const { payload } = await jwtVerify(match[1] as string, createRemoteJWKSet(new URL(oidc.jwksUrl)), { issuer: oidc.issuer, audience: oidc.audience })
  // The fixture puts the assertion's subject into the token it issues.
  assert.equal(payload.sub, oidc.jwtBearer.subject)
  assert.deepEqual(oidc.tokenRequests().log.at(-1), { grantType: JWT_BEARER_GRANT, status: 200 })
}

test('jwt_bearer with an ES256 private key (PEM)', async (t) => {
  const { upstream, proxy } = await proxyFor(t, { privateKey: oidc.jwtBearer.privateKeyPem })
  const res = await fetch(`${proxy.url}/api/report`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  await assertIssuedTokenForwarded(upstream)
})

test('jwt_bearer with an HS256 secret', async (t) => {
  const { upstream, proxy } = await proxyFor(t, { secret: oidc.jwtBearer.secret, alg: 'HS256' })
  const res = await fetch(`${proxy.url}/api/report`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  await assertIssuedTokenForwarded(upstream)
})

test('jwt_bearer with HS256 as the default algorithm of a secret', async (t) => {
  const { upstream, proxy } = await proxyFor(t, { secret: oidc.jwtBearer.secret })
  const res = await fetch(`${proxy.url}/api/report`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  await assertIssuedTokenForwarded(upstream)
})

test('the assertion carries iss and sub from claims and aud = the token URL by default', async (t) => {
  // The fixture accepts its issuer as aud too, so the default is checked on the wire here.
  const endpoint = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, auth: { type: 'jwt_bearer', tokenUrl: endpoint.tokenUrl, secret: oidc.jwtBearer.secret, claims: { iss: 'issuer-x', sub: 'subject-y' } } } }
  })
  const res = await fetch(`${proxy.url}/api/report`)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.equal(endpoint.calls.length, 1)
  const form = endpoint.calls[0]?.form as URLSearchParams
  assert.equal(form.get('grant_type'), JWT_BEARER_GRANT)
  const claims = decodeJwt(form.get('assertion') ?? '')
  assert.equal(claims.iss, 'issuer-x')
  assert.equal(claims.sub, 'subject-y')
  assert.equal(claims.aud, endpoint.tokenUrl)
  assert.equal(typeof claims.exp, 'number')
  assert.equal(upstream.requests[0]?.headers.authorization, 'Bearer token-1')
})

test('jwt_bearer with a wrong private key is 502 TOKEN_REJECTED', async (t) => {
  const other = await generateKeyPair('ES256', { extractable: true })
  const { upstream, proxy } = await proxyFor(t, { privateKey: await exportPKCS8(other.privateKey) })
  const res = await fetch(`${proxy.url}/api/report`)
  const body = await res.json() as { error: { code: string, message: string } }
  assert.equal(res.status, 502)
  assert.equal(body.error.code, 'TOKEN_REJECTED')
  assert.match(body.error.message, /invalid_grant/)
  assert.equal(upstream.requests.length, 0)
})

test('jwt_bearer with a wrong secret is 502 TOKEN_REJECTED without the secret', async (t) => {
  const wrong = 'wrong-hmac-secret-CANARY-0b1d2c3e4f'
  const { upstream, proxy } = await proxyFor(t, { secret: wrong })
  const res = await fetch(`${proxy.url}/api/report`)
  const text = await res.text()
  assert.equal(res.status, 502)
  assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'TOKEN_REJECTED')
  assert.ok(!text.includes(wrong))
  assert.equal(upstream.requests.length, 0)
})
