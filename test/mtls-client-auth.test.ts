import assert from 'node:assert/strict'
import { after, before, test, type TestContext } from 'node:test'
import { decodeJwt } from 'jose'
import { exampleWithFiles } from './example-helpers.js'
import { recordingUpstream, startProxy, type TestProxy } from './helpers.js'
import { startMtlsProvider, type MtlsFixture } from './fixtures/oidc-mtls-provider.js'
import { certificateThumbprint, testPki } from './tls-certificates.js'

// RFC 8705 client authentication at the token endpoint: the certificate of
// `auth.tls` (default: the route's `tls`) authenticates the client, and the
// token the provider issues is bound to it (`cnf.x5t#S256`).

const pki = testPki()
let idp: MtlsFixture
before(async () => {
  idp = await startMtlsProvider({ server: pki.server, clientCa: pki.ca.cert, selfSignedCert: pki.selfSigned.cert, subjectDn: 'CN=bearer-proxy-client' })
})
after(() => idp.close())

async function proxyWith (t: TestContext, auth: Record<string, unknown>, route: Record<string, unknown> = {}): Promise<{ proxy: TestProxy, upstream: Awaited<ReturnType<typeof recordingUpstream>> }> {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, ...route, auth: { type: 'client_credentials', tokenUrl: idp.tokenUrl, ...auth } } } })
  return { proxy, upstream }
}

async function tokenThroughProxy (t: TestContext, auth: Record<string, unknown>, route: Record<string, unknown> = {}): Promise<string> {
  const { proxy, upstream } = await proxyWith(t, auth, route)
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  const match = /^Bearer (\S+)$/.exec(upstream.requests[0]?.headers.authorization ?? '')
  assert.ok(match, 'the upstream got a Bearer token')
  assertNoSecrets(proxy.logs.text(), match[1] as string)
  return match[1] as string
}

/** No private key, no certificate, no token in what the proxy wrote. */
function assertNoSecrets (text: string, token?: string): void {
  for (const pem of [pki.client.key, pki.selfSigned.key, pki.otherClient.key]) {
    for (const line of pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))) assert.ok(!text.includes(line), 'no line of a private key')
  }
  assert.ok(!text.includes('PRIVATE KEY'))
  if (token !== undefined) assert.ok(!text.includes(token), 'no access token')
}

test('tls_client_auth: the CA-issued client certificate gets a token bound to it', async (t) => {
  const token = await tokenThroughProxy(t, {
    clientId: idp.clients.tls.clientId,
    clientAuth: 'tls_client_auth',
    tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert }
  })
  const claims = decodeJwt(token)
  assert.equal(claims.client_id, idp.clients.tls.clientId)
  assert.deepEqual(claims.cnf, { 'x5t#S256': certificateThumbprint(pki.client.cert) })
  assert.deepEqual(idp.tokenRequests.at(-1), { clientId: idp.clients.tls.clientId, status: 200, clientCertificate: true })
})

test('self_signed_tls_client_auth: the registered self-signed certificate gets a token bound to it', async (t) => {
  const token = await tokenThroughProxy(t, {
    clientId: idp.clients.selfSigned.clientId,
    clientAuth: 'self_signed_tls_client_auth',
    tls: { cert: pki.selfSigned.cert, key: pki.selfSigned.key, ca: pki.ca.cert }
  })
  const claims = decodeJwt(token)
  assert.equal(claims.client_id, idp.clients.selfSigned.clientId)
  assert.deepEqual(claims.cnf, { 'x5t#S256': certificateThumbprint(pki.selfSigned.cert) })
})

test('the route\'s tls is the token endpoint\'s when the auth block gives none', async (t) => {
  const token = await tokenThroughProxy(t, { clientId: idp.clients.tls.clientId, clientAuth: 'tls_client_auth' }, {
    tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert }
  })
  assert.deepEqual(decodeJwt(token).cnf, { 'x5t#S256': certificateThumbprint(pki.client.cert) })
})

test('config/examples/mtls.yaml: the route\'s certificate, key and CA serve the token endpoint', async (t) => {
  const pems: Record<string, string> = { 'client.crt': pki.client.cert, 'client.key': pki.client.key, 'ca.crt': pki.ca.cert }
  const example = exampleWithFiles(t, 'mtls.yaml', (path) => pems[path.split('/').at(-1) ?? ''] ?? '')
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, example.config, { env: { PAYMENTS_API_URL: upstream.url, MTLS_TOKEN_URL: idp.tokenUrl, MTLS_CLIENT_ID: idp.clients.tls.clientId } })
  const res = await fetch(`${proxy.url}/payments/v1/balance`)
  assert.equal(res.status, 200, await res.clone().text())
  const token = /^Bearer (\S+)$/.exec(upstream.requests[0]?.headers.authorization ?? '')?.[1] ?? ''
  assert.deepEqual(decodeJwt(token).cnf, { 'x5t#S256': certificateThumbprint(pki.client.cert) })
  assertNoSecrets(proxy.logs.text(), token)
})

for (const [name, clientKey, pair] of [
  ['a certificate of another subject for tls_client_auth', 'tls', pki.otherClient],
  ['an unregistered certificate for self_signed_tls_client_auth', 'selfSigned', pki.client]
] as const) {
  test(`${name} is 502 TOKEN_REJECTED, the provider's words passed on`, async (t) => {
    const client = idp.clients[clientKey]
    const { proxy, upstream } = await proxyWith(t, {
      clientId: client.clientId,
      clientAuth: clientKey === 'tls' ? 'tls_client_auth' : 'self_signed_tls_client_auth',
      tls: { cert: pair.cert, key: pair.key, ca: pki.ca.cert }
    })
    const res = await fetch(`${proxy.url}/api/things`)
    const text = await res.text()
    assert.equal(res.status, 502, text)
    const body = JSON.parse(text) as { error: { code: string, message: string } }
    assert.equal(body.error.code, 'TOKEN_REJECTED')
    assert.match(body.error.message, /invalid_client/)
    assert.equal(upstream.requests.length, 0)
    assert.deepEqual(idp.tokenRequests.at(-1), { clientId: client.clientId, status: 401, error: 'invalid_client', clientCertificate: true })
    assertNoSecrets(text + proxy.logs.text())
  })
}
