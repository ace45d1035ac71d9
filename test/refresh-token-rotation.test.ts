import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { listen, readBody, recordingUpstream, startProxy } from './helpers.js'
import { startOidcProvider } from './fixtures/oidc-provider.js'

interface Exchange {
  sent: string | null
  status: number
  received: string | undefined
}

test('refresh_token: every renewal uses the rotated refresh token, never an old one', async (t) => {
  const oidc = await startOidcProvider()
  t.after(() => oidc.close())
  const { clientId, clientSecret } = oidc.clients.basic
  const seed = await oidc.issueRefreshToken('basic')

  // A pass-through in front of the provider that records which refresh token went out and which came back.
  const exchanges: Exchange[] = []
  const front = await listen(t, async (req, res) => {
    const body = await readBody(req)
    const answer = await fetch(oidc.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? '', authorization: req.headers.authorization ?? '' },
      body
    })
    const text = await answer.text()
    const json = JSON.parse(text) as { refresh_token?: string }
    exchanges.push({ sent: new URLSearchParams(body.toString('utf8')).get('refresh_token'), status: answer.status, received: json.refresh_token })
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text)
  })

  const upstream = await recordingUpstream(t)
  let clock = Date.now()
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: `${front.url}/token`, clientId, clientSecret, refreshToken: seed } } }
  }, { now: () => clock })

  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${proxy.url}/api/data`)
    assert.equal(res.status, 200, `request ${i}: ${await res.clone().text()}`)
    await res.arrayBuffer()
    // Past expiry (the fixture's tokens live 300 s), so the next request must renew first.
    clock += 400_000
  }

  assert.equal(exchanges.length, 4, 'one token request per expired token')
  assert.deepEqual(exchanges.map((e) => e.status), [200, 200, 200, 200], 'the provider accepted every renewal')
  assert.equal(exchanges[0]?.sent, seed, 'the first request uses the configured refresh token')
  for (let i = 1; i < exchanges.length; i++) {
    const previous = exchanges[i - 1] as Exchange
    assert.ok(previous.received !== undefined && previous.received !== previous.sent, `answer ${i - 1} rotated the refresh token`)
    assert.equal(exchanges[i]?.sent, previous.received, `renewal ${i} uses the refresh token rotated by answer ${i - 1}`)
  }
  const sent = exchanges.map((e) => e.sent)
  assert.equal(new Set(sent).size, sent.length, 'no refresh token is sent twice')
  assert.deepEqual(oidc.tokenRequests().log.map((r) => [r.grantType, r.status]), Array(4).fill(['refresh_token', 200]))

  // Each request carried a fresh access token issued by the provider.
  const tokens = upstream.requests.map((r) => (r.headers.authorization ?? '').replace(/^Bearer /, ''))
  assert.equal(new Set(tokens).size, 4)
  const jwks = createRemoteJWKSet(new URL(oidc.jwksUrl))
  for (const token of tokens) await jwtVerify(token, jwks, { issuer: oidc.issuer, audience: oidc.audience })

  // The premise of the test: this provider punishes reuse of a rotated refresh token.
  const reuse = await fetch(oidc.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: seed }).toString()
  })
  assert.equal(reuse.status, 400)
  assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant')
})
