import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { importJWK, SignJWT } from 'jose'
import { startOidcProvider, type OidcFixture } from './fixtures/oidc-provider.js'
import { recordingUpstream, startProxy } from './helpers.js'

// `clientAssertion` (RFC 7523 §2.2): a JWT made elsewhere (a Kubernetes or
// SPIFFE workload token) is the client's authentication, read from its file
// for every token request. oidc-provider refuses an assertion it has seen
// (its jti), so a second token request succeeds only with the rotated one.

let oidc: OidcFixture
before(async () => { oidc = await startOidcProvider() })
after(() => oidc.close())

/** What the workload identity system would write: a fresh assertion for the registered client. */
async function assertion (): Promise<string> {
  const { clientId, privateJwk } = oidc.clients.privateKeyJwt
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: privateJwk.kid as string })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(oidc.tokenUrl)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(await importJWK(privateJwk, 'RS256'))
}

async function setup (t: TestContext, first: string) {
  const dir = await mkdtemp(join(tmpdir(), 'bearer-proxy-assertion-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'client-assertion.jwt')
  await writeFile(file, `${first}\n`)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      api: {
        upstream: upstream.url,
        auth: { type: 'client_credentials', tokenUrl: oidc.tokenUrl, clientId: oidc.clients.privateKeyJwt.clientId, clientAssertion: `\${file:${file}}` }
      }
    }
  })
  return { proxy, upstream, file }
}

test('the client assertion file is read again for every token request: the rotated one is sent', async (t) => {
  const first = await assertion()
  const { proxy, upstream, file } = await setup(t, first)
  assert.equal((await fetch(`${proxy.url}/api/a`)).status, 200)

  const second = await assertion()
  await writeFile(`${file}.next`, second)
  await rename(`${file}.next`, file)
  oidc.resetTokenRequests()
  await proxy.brokers.get('api')?.forget()
  const res = await fetch(`${proxy.url}/api/b`)
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(oidc.tokenRequests().log, [{ grantType: 'client_credentials', status: 200 }])
  assert.equal(upstream.requests.length, 2)
  const logs = proxy.logs.text()
  for (const jwt of [first, second]) for (const part of jwt.split('.').slice(1)) assert.ok(!logs.includes(part), 'no assertion in the logs')
})

test('control: the same assertion sent twice is refused by the provider (so the test above proves a re-read)', async (t) => {
  const { proxy } = await setup(t, await assertion())
  assert.equal((await fetch(`${proxy.url}/api/a`)).status, 200)
  await proxy.brokers.get('api')?.forget()
  const res = await fetch(`${proxy.url}/api/b`)
  const text = await res.text()
  assert.equal(res.status, 502, text)
  assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'TOKEN_REJECTED')
})
