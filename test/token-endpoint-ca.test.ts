import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { startMtlsProvider, type MtlsFixture } from './fixtures/oidc-mtls-provider.js'
import { testPki } from './tls-certificates.js'

// `auth.tls.ca` adds trusted CAs for the token endpoint; it never turns
// verification off, and never sets the system CAs aside. A token endpoint
// whose certificate nothing trusted vouches for gets no request at all, so no
// credential is sent to it.

const pki = testPki()
let idp: MtlsFixture
before(async () => {
  idp = await startMtlsProvider({ server: pki.server, clientCa: pki.ca.cert, selfSignedCert: pki.selfSigned.cert, subjectDn: 'CN=bearer-proxy-client' })
})
after(() => idp.close())

async function firstRequest (t: TestContext, tls: Record<string, unknown>): Promise<{ status: number, body: { error?: { code: string, message: string } }, retryAfter: string | null, logs: string }> {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: idp.tokenUrl, clientId: idp.clients.tls.clientId, clientAuth: 'tls_client_auth', tls } } }
  })
  const res = await fetch(`${proxy.url}/api/things`)
  const body = await res.json() as { error?: { code: string, message: string } }
  return { status: res.status, body, retryAfter: res.headers.get('retry-after'), logs: proxy.logs.text() }
}

test('a token endpoint certificate no trusted CA vouches for: 503 TOKEN_UNAVAILABLE saying so, and no request sent', async (t) => {
  const before = idp.tokenRequests.length
  // No `ca`: the test CA is not among the system CAs. Then a CA that did not sign the server's certificate.
  for (const tls of [{ cert: pki.client.cert, key: pki.client.key }, { cert: pki.client.cert, key: pki.client.key, ca: pki.otherServer.ca }]) {
    const res = await firstRequest(t, tls)
    assert.equal(res.status, 503, JSON.stringify(res.body))
    assert.equal(res.body.error?.code, 'TOKEN_UNAVAILABLE')
    assert.match(res.body.error?.message ?? '', /TLS certificate is not trusted \([A-Z_]+\); nothing was sent/)
    assert.ok(res.retryAfter !== null, 'Retry-After is set')
    assert.ok(!res.logs.includes('PRIVATE KEY') && !res.logs.includes(pki.client.key.split('\n')[1] ?? '-'))
  }
  assert.equal(idp.tokenRequests.length, before, 'no token request reached the endpoint')
})

test('`ca` adds trust: the test CA makes the endpoint trusted', async (t) => {
  const res = await firstRequest(t, { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert })
  assert.equal(res.status, 200, JSON.stringify(res.body))
})

test('`ca` keeps the CAs trusted before it (NODE_EXTRA_CA_CERTS), rather than replacing them', async (t) => {
  // The test CA reaches the store only through NODE_EXTRA_CA_CERTS; `ca` names an unrelated one.
  const dir = await mkdtemp(join(tmpdir(), 'bearer-proxy-ca-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const extra = join(dir, 'extra-ca.pem')
  await writeFile(extra, pki.ca.cert)
  const previous = process.env.NODE_EXTRA_CA_CERTS
  process.env.NODE_EXTRA_CA_CERTS = extra
  t.after(() => {
    if (previous === undefined) delete process.env.NODE_EXTRA_CA_CERTS
    else process.env.NODE_EXTRA_CA_CERTS = previous
  })
  const res = await firstRequest(t, { cert: pki.client.cert, key: pki.client.key, ca: pki.otherServer.ca })
  assert.equal(res.status, 200, JSON.stringify(res.body))
})
