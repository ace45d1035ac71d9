import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DiscoveryError, discoverIssuer, MAX_METADATA_BYTES, wellKnownUrls } from '../src/auth/discovery.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { listen, sendJson } from './helpers.js'

test('the well-known URLs: RFC 8414 inserts its segment before the issuer\'s path, OpenID Connect appends its own', () => {
  assert.deepEqual(wellKnownUrls('https://as.example'), ['https://as.example/.well-known/oauth-authorization-server', 'https://as.example/.well-known/openid-configuration'])
  assert.deepEqual(wellKnownUrls('https://as.example/'), ['https://as.example/.well-known/oauth-authorization-server', 'https://as.example/.well-known/openid-configuration'])
  assert.deepEqual(wellKnownUrls('https://as.example/tenant/a'), ['https://as.example/.well-known/oauth-authorization-server/tenant/a', 'https://as.example/tenant/a/.well-known/openid-configuration'])
  for (const bad of ['as.example', 'ftp://as.example', 'https://as.example/?tenant=a', 'https://as.example/#x', 'https://user:pw@as.example']) {
    assert.throws(() => wellKnownUrls(bad), DiscoveryError, bad)
  }
})

test('discovery reads oidc-provider\'s metadata: the endpoints of every login', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  const metadata = await discoverIssuer(op.issuer, { timeoutMs: 10_000 })
  assert.equal(metadata.issuer, op.issuer)
  assert.equal(metadata.source, `${op.issuer}/.well-known/oauth-authorization-server`)
  assert.equal(metadata.tokenEndpoint, op.tokenUrl)
  assert.equal(metadata.authorizationEndpoint, op.authorizationUrl)
  assert.equal(metadata.deviceAuthorizationEndpoint, op.deviceAuthorizationUrl)
  assert.equal(metadata.revocationEndpoint, op.revocationUrl)
  assert.equal(metadata.authorizationResponseIssParameterSupported, true)
  assert.deepEqual(metadata.codeChallengeMethodsSupported, ['S256'])
})

/** A server with documents at the given paths; every request's path is recorded. */
async function metadataServer (t: Parameters<typeof listen>[0], documents: (base: string) => Record<string, unknown>): Promise<{ base: string, paths: string[] }> {
  const paths: string[] = []
  let base = ''
  const server = await listen(t, (req, res) => {
    paths.push(req.url ?? '')
    const doc = documents(base)[req.url ?? '']
    if (doc === undefined) return sendJson(res, 404, { error: 'not_found' })
    if (typeof doc === 'string') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(doc)
      return
    }
    sendJson(res, 200, doc)
  })
  base = server.url
  return { base, paths }
}

test('an issuer with a path: the RFC 8414 document is read where the well-known segment is inserted', async (t) => {
  const { base, paths } = await metadataServer(t, (b) => ({
    '/.well-known/oauth-authorization-server/tenant': { issuer: `${b}/tenant`, token_endpoint: `${b}/tenant/token`, device_authorization_endpoint: `${b}/tenant/device` }
  }))
  const metadata = await discoverIssuer(`${base}/tenant`, { timeoutMs: 10_000 })
  assert.equal(metadata.tokenEndpoint, `${base}/tenant/token`)
  assert.equal(metadata.deviceAuthorizationEndpoint, `${base}/tenant/device`)
  assert.equal(metadata.authorizationResponseIssParameterSupported, false)
  assert.deepEqual(paths, ['/.well-known/oauth-authorization-server/tenant'])
})

test('without an RFC 8414 document the OpenID Connect one is read, appended to the issuer\'s path', async (t) => {
  const { base, paths } = await metadataServer(t, (b) => ({
    '/tenant/.well-known/openid-configuration': { issuer: `${b}/tenant`, token_endpoint: `${b}/tenant/token`, revocation_endpoint: `${b}/tenant/revoke` }
  }))
  const metadata = await discoverIssuer(`${base}/tenant`, { timeoutMs: 10_000 })
  assert.equal(metadata.revocationEndpoint, `${base}/tenant/revoke`)
  assert.equal(metadata.source, `${base}/tenant/.well-known/openid-configuration`)
  assert.deepEqual(paths, ['/.well-known/oauth-authorization-server/tenant', '/tenant/.well-known/openid-configuration'])
})

test('metadata naming another issuer is refused, not used and not tried further (the mix-up defence)', async (t) => {
  const { base, paths } = await metadataServer(t, () => ({
    '/.well-known/oauth-authorization-server': { issuer: 'https://other-as.example', token_endpoint: 'https://other-as.example/token' },
    '/.well-known/openid-configuration': { issuer: 'https://other-as.example', token_endpoint: 'https://other-as.example/token' }
  }))
  await assert.rejects(discoverIssuer(base, { timeoutMs: 10_000 }), (err: unknown) => err instanceof DiscoveryError && /another issuer/.test(err.message) && /refused/.test(err.message))
  assert.equal(paths.length, 1)
  // A trailing slash is another issuer too: the comparison is exact (RFC 8414 §3.3).
  const slash = await metadataServer(t, (b) => ({ '/.well-known/oauth-authorization-server': { issuer: `${b}/`, token_endpoint: `${b}/token` } }))
  await assert.rejects(discoverIssuer(slash.base, { timeoutMs: 10_000 }), /another issuer/)
})

test('no metadata anywhere, a document that is not JSON, an endpoint that is not http(s): clear errors that echo no value', async (t) => {
  const none = await metadataServer(t, () => ({}))
  await assert.rejects(discoverIssuer(none.base, { timeoutMs: 10_000 }), (err: unknown) => err instanceof DiscoveryError && /no authorization server metadata/.test(err.message) && /HTTP 404/.test(err.message))
  const bad = await metadataServer(t, (b) => ({ '/.well-known/oauth-authorization-server': { issuer: b, token_endpoint: 'javascript:secret-looking-value' } }))
  await assert.rejects(discoverIssuer(bad.base, { timeoutMs: 10_000 }), (err: unknown) => err instanceof DiscoveryError && /"token_endpoint" is not an absolute http\(s\) URL/.test(err.message) && !err.message.includes('secret-looking-value'))
  const notJson = await metadataServer(t, () => ({ '/.well-known/oauth-authorization-server': 'not json', '/.well-known/openid-configuration': '[1]' }))
  await assert.rejects(discoverIssuer(notJson.base, { timeoutMs: 10_000 }), /not JSON.*not a JSON object/)
})

test('discovery is bounded in size and in time', async (t) => {
  const big = await listen(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(`{"issuer":"x","pad":"${'a'.repeat(MAX_METADATA_BYTES)}"}`)
  })
  await assert.rejects(discoverIssuer(big.url, { timeoutMs: 10_000 }), (err: unknown) => err instanceof DiscoveryError && /larger than/.test(err.message))
  const silent = await listen(t, () => {})
  const started = Date.now()
  await assert.rejects(discoverIssuer(silent.url, { timeoutMs: 300 }), (err: unknown) => err instanceof DiscoveryError && /no answer within 300 ms/.test(err.message))
  assert.ok(Date.now() - started < 10_000)
})
