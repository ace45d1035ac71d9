import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { NET_API_UNAUTHENTICATED, startNetApi, type NetApiOptions } from './fixtures/net-api.js'
import {
  assertNoSecrets, assertReplayed, assertUnavailable, bearerOf, burst, call, non2xx, REPLAY_BODY, SkewClock,
  startSeedEmulator, startSeedProxy, steadyTraffic, type SeedProxyOptions
} from './seed-helpers.js'

// The shipped config/examples/net-api-static.yaml (API key, no token endpoint)
// and net-api-oauth.yaml (client credentials at /oauth/token, no refresh token)
// against the Net API emulator.

const USERS = '/net-api/v1/users'
const TOKEN = '/oauth/token'

async function setupOAuth (t: TestContext, emulator: NetApiOptions = {}, options: SeedProxyOptions = {}) {
  const emu = await startSeedEmulator(t, () => startNetApi(emulator))
  const env = { NET_API_URL: emu.url, NET_API_CLIENT_ID: emu.credentials.clientId, NET_API_CLIENT_SECRET: emu.credentials.clientSecret }
  const proxy = await startSeedProxy(t, 'net-api-oauth', env, options)
  return { emu, proxy }
}

test('net-api-static.yaml as shipped: every request carries the API key and no token endpoint is called', async (t) => {
  const emu = await startSeedEmulator(t, () => startNetApi())
  const key = emu.credentials.apiKeys[0] as string
  const proxy = await startSeedProxy(t, 'net-api-static', { NET_API_URL: emu.url, NET_API_KEY: key })

  const first = await call(`${proxy.url}${USERS}`)
  assert.equal(first.status, 200, first.text)
  assert.equal(first.json?.data?.[0]?.email, 'jane@example.com')

  const answers = await burst(`${proxy.url}${USERS}`, 50)
  assert.deepEqual(non2xx(answers), [])
  assert.equal(emu.tokenRequests.length, 0)
  assert.equal(emu.calls(TOKEN), 0)
  assert.equal(emu.requests.length, 51)
  for (const request of emu.requests) {
    assert.equal(request.path, '/v1/users')
    assert.equal(request.headers.authorization, `Bearer ${key}`)
  }
  assertNoSecrets({ logs: proxy.logs.text() }, { 'API key': key })
})

test('net-api-static: a wrong key is passed on as the API\'s own 401, with no token endpoint to retry', async (t) => {
  const emu = await startSeedEmulator(t, () => startNetApi())
  const proxy = await startSeedProxy(t, 'net-api-static', { NET_API_URL: emu.url, NET_API_KEY: 'nk_not-a-key-of-this-api' })

  const answer = await call(`${proxy.url}${USERS}`)

  assert.equal(answer.status, 401)
  assert.deepEqual(answer.json, NET_API_UNAUTHENTICATED)
  assert.equal(emu.calls(TOKEN), 0)
})

test('net-api-oauth.yaml as shipped: the first request on a cold proxy gets the users', async (t) => {
  const { emu, proxy } = await setupOAuth(t)

  const answer = await call(`${proxy.url}${USERS}`)

  assert.equal(answer.status, 200, answer.text)
  assert.equal(answer.json?.data?.[0]?.email, 'jane@example.com')
  assert.equal(emu.calls(TOKEN), 1)
  assert.equal(emu.tokenRequests[0]?.headers['content-type'], 'application/x-www-form-urlencoded')
  const form = new URLSearchParams(emu.tokenRequests[0]?.body.toString('utf8'))
  assert.equal(form.get('grant_type'), 'client_credentials')
  // The Net API documents client_id and client_secret as parameters of the token request body.
  assert.equal(form.get('client_id'), emu.credentials.clientId)
  assert.equal(form.get('client_secret'), emu.credentials.clientSecret)
  assert.equal(emu.tokenRequests[0]?.headers.authorization, undefined)
  assert.equal(emu.requests.length, 1)
  assert.equal(emu.requests[0]?.path, '/v1/users')
  assert.equal(bearerOf(emu.requests[0]), emu.issuedAccessTokens()[0])
  assertNoSecrets({ logs: proxy.logs.text() }, { 'client secret': emu.credentials.clientSecret, 'access token': emu.issuedAccessTokens()[0] as string })
})

test('net-api-oauth: 50 concurrent requests on a cold proxy cause exactly one token request', async (t) => {
  const { emu, proxy } = await setupOAuth(t)

  const answers = await burst(`${proxy.url}${USERS}`, 50)

  assert.deepEqual(non2xx(answers), [])
  assert.equal(emu.tokenRequests.length, 1)
  assert.equal(new Set(emu.requests.map(bearerOf)).size, 1, 'every request carried the one token')
})

test('net-api-oauth: 2 s tokens under 7 s of steady traffic are renewed ahead of expiry, never failing a request', async (t) => {
  const { emu, proxy } = await setupOAuth(t, { tokenTtl: 2 })

  const answers = await steadyTraffic(`${proxy.url}${USERS}`, { durationMs: 7000, intervalMs: 50, maxRequests: 140 })

  assert.deepEqual(non2xx(answers), [])
  assert.ok(answers.length >= 100, `steady traffic sent ${answers.length} requests`)
  // No request reached the API with a token it refused (no replays): renewal came ahead of expiry.
  assert.equal(emu.requests.length, answers.length)
  // Client credentials bring no refresh token: each renewal is a new grant, one per ~1.6 s,
  // never more often than the 1 s minimum interval.
  const grants = emu.calls(TOKEN)
  assert.ok(grants >= 4 && grants <= 8, `${grants} token requests in 7 s`)
})

test('net-api-oauth: after the tokens are revoked, a POST with a JSON body is replayed once on the 401 and succeeds', async (t) => {
  const clock = new SkewClock()
  const { emu, proxy } = await setupOAuth(t, {}, { now: clock.now })
  assert.equal((await call(`${proxy.url}${USERS}`)).status, 200)
  const revoked = emu.issuedAccessTokens()[0]

  emu.revokeAll()
  // Past the 1 s minimum between token requests, instead of sleeping through it.
  clock.skip(1000)
  const answer = await call(`${proxy.url}/net-api/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REPLAY_BODY })

  assertReplayed(answer, emu, '/v1/orders', revoked as string)
  assert.deepEqual(answer.json?.body, JSON.parse(REPLAY_BODY.toString('utf8')))
  assert.equal(emu.calls(TOKEN), 2)
})

test('net-api-oauth: refused client credentials give 502 TOKEN_REJECTED with the API\'s reason and no secret anywhere', async (t) => {
  const { emu, proxy } = await setupOAuth(t)
  emu.mode = 'rejectCredentials'

  const answer = await call(`${proxy.url}${USERS}`)

  assert.equal(answer.status, 502, answer.text)
  assert.equal(answer.json?.error?.code, 'TOKEN_REJECTED')
  assert.equal(answer.json?.error?.route, 'net-api')
  assert.match(answer.json?.error?.message ?? '', /invalid_client/)
  assert.match(answer.json?.error?.message ?? '', /Client authentication failed/)
  assert.equal(emu.requests.length, 0, 'nothing reached the API')
  assertNoSecrets({ 'error body': answer.text, logs: proxy.logs.text() }, { 'client secret': emu.credentials.clientSecret })
})

test('net-api-oauth: token server down on a cold start gives 503 with Retry-After, then recovers without a restart', async (t) => {
  const clock = new SkewClock()
  const { emu, proxy } = await setupOAuth(t, {}, { now: clock.now })
  emu.mode = 'down'

  const failed = await call(`${proxy.url}${USERS}`)
  const retryAfter = assertUnavailable(failed, 'net-api')
  assert.equal(emu.requests.length, 0)

  emu.mode = 'normal'
  clock.skip(retryAfter * 1000)
  const recovered = await call(`${proxy.url}${USERS}`)

  assert.equal(recovered.status, 200, recovered.text)
  assert.equal(emu.calls(TOKEN), 2, 'one failed token request, one that worked')
  assertNoSecrets({ 'error body': failed.text, logs: proxy.logs.text() }, { 'client secret': emu.credentials.clientSecret })
})
