import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { startNetFoundry, type NetFoundryOptions } from './fixtures/netfoundry.js'
import {
  assertNoSecrets, assertReplayed, assertUnavailable, bearerOf, burst, call, non2xx, REPLAY_BODY, SkewClock,
  startSeedEmulator, startSeedProxy, steadyTraffic, type SeedProxyOptions
} from './seed-helpers.js'

// The shipped config/examples/netfoundry.yaml against the NetFoundry emulator:
// client credentials as an Auth0-style JSON body with an audience, no refresh token.

const NETWORKS = '/netfoundry/rest/v1/networks'
const TOKEN = '/oauth/token'

async function setup (t: TestContext, emulator: NetFoundryOptions = {}, options: SeedProxyOptions = {}) {
  const emu = await startSeedEmulator(t, () => startNetFoundry(emulator))
  const env = {
    NETFOUNDRY_GATEWAY_URL: emu.url,
    NETFOUNDRY_TOKEN_URL: `${emu.url}${TOKEN}`,
    NETFOUNDRY_CLIENT_ID: emu.credentials.clientId,
    NETFOUNDRY_CLIENT_SECRET: emu.credentials.clientSecret,
    NETFOUNDRY_AUDIENCE: emu.credentials.audience
  }
  const proxy = await startSeedProxy(t, 'netfoundry', env, options)
  return { emu, proxy }
}

test('netfoundry.yaml as shipped: the first request on a cold proxy gets the networks', async (t) => {
  const { emu, proxy } = await setup(t)

  const answer = await call(`${proxy.url}${NETWORKS}`)

  assert.equal(answer.status, 200, answer.text)
  assert.equal(answer.json?._embedded?.networks?.[0]?.name, 'demo-network')
  assert.equal(emu.calls(TOKEN), 1)
  // Auth0 style: everything in one JSON body, no Basic header.
  const tokenRequest = emu.tokenRequests[0]
  assert.equal(tokenRequest?.headers['content-type'], 'application/json')
  assert.equal(tokenRequest?.headers.authorization, undefined)
  assert.deepEqual(JSON.parse(tokenRequest?.body.toString('utf8') ?? 'null'), {
    grant_type: 'client_credentials',
    client_id: emu.credentials.clientId,
    client_secret: emu.credentials.clientSecret,
    audience: emu.credentials.audience
  })
  assert.equal(emu.requests.length, 1)
  assert.equal(emu.requests[0]?.path, '/rest/v1/networks')
  assert.equal(bearerOf(emu.requests[0]), emu.issuedAccessTokens()[0])
  assertNoSecrets({ logs: proxy.logs.text() }, { 'client secret': emu.credentials.clientSecret, 'access token': emu.issuedAccessTokens()[0] as string })
})

test('netfoundry: 50 concurrent requests on a cold proxy cause exactly one token request', async (t) => {
  const { emu, proxy } = await setup(t)

  const answers = await burst(`${proxy.url}${NETWORKS}`, 50)

  assert.deepEqual(non2xx(answers), [])
  assert.equal(emu.tokenRequests.length, 1)
  assert.equal(new Set(emu.requests.map(bearerOf)).size, 1, 'every request carried the one token')
})

test('netfoundry: 3 s tokens under 7 s of steady traffic are renewed ahead of expiry, never failing a request', async (t) => {
  const { emu, proxy } = await setup(t, { tokenTtl: 3 })

  const answers = await steadyTraffic(`${proxy.url}${NETWORKS}`, { durationMs: 7000, intervalMs: 50, maxRequests: 140 })

  assert.deepEqual(non2xx(answers), [])
  assert.ok(answers.length >= 100, `steady traffic sent ${answers.length} requests`)
  // No request reached the API with a token it refused (no replays): renewal came ahead of expiry.
  assert.equal(emu.requests.length, answers.length)
  // Auth0 issues no refresh token for client credentials: each renewal is a new grant, one per ~2.4 s.
  const grants = emu.calls(TOKEN)
  assert.ok(grants >= 3 && grants <= 8, `${grants} token requests in 7 s`)
})

test('netfoundry: after the tokens are revoked, a POST with a JSON body is replayed once on the 401 and succeeds', async (t) => {
  const clock = new SkewClock()
  const { emu, proxy } = await setup(t, {}, { now: clock.now })
  assert.equal((await call(`${proxy.url}${NETWORKS}`)).status, 200)
  const revoked = emu.issuedAccessTokens()[0]

  emu.revokeAll()
  // Past the 1 s minimum between token requests, instead of sleeping through it.
  clock.skip(1000)
  const answer = await call(`${proxy.url}/netfoundry/rest/v1/networks/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REPLAY_BODY })

  assertReplayed(answer, emu, '/rest/v1/networks/search', revoked as string)
  assert.deepEqual(answer.json?.body, JSON.parse(REPLAY_BODY.toString('utf8')))
  assert.equal(emu.calls(TOKEN), 2)
})

test('netfoundry: refused client credentials give 502 TOKEN_REJECTED with Auth0\'s reason and no secret anywhere', async (t) => {
  const { emu, proxy } = await setup(t)
  emu.mode = 'rejectCredentials'

  const answer = await call(`${proxy.url}${NETWORKS}`)

  assert.equal(answer.status, 502, answer.text)
  assert.equal(answer.json?.error?.code, 'TOKEN_REJECTED')
  assert.equal(answer.json?.error?.route, 'netfoundry')
  assert.match(answer.json?.error?.message ?? '', /access_denied/)
  assert.match(answer.json?.error?.message ?? '', /Unauthorized/)
  assert.equal(emu.requests.length, 0, 'nothing reached the API')
  assertNoSecrets({ 'error body': answer.text, logs: proxy.logs.text() }, { 'client secret': emu.credentials.clientSecret })
})

test('netfoundry: a hanging token endpoint on a cold start gives 503 with Retry-After, then recovers without a restart', async (t) => {
  const clock = new SkewClock()
  const { emu, proxy } = await setup(t, {}, { now: clock.now, tokenTimeout: 300 })
  emu.mode = 'hang'

  const failed = await call(`${proxy.url}${NETWORKS}`)
  const retryAfter = assertUnavailable(failed, 'netfoundry')
  assert.equal(emu.requests.length, 0)

  emu.mode = 'normal'
  clock.skip(retryAfter * 1000)
  const recovered = await call(`${proxy.url}${NETWORKS}`)

  assert.equal(recovered.status, 200, recovered.text)
  assert.equal(emu.calls(TOKEN), 2, 'one token request that got no answer, one that worked')
  assertNoSecrets({ 'error body': failed.text, logs: proxy.logs.text() }, { 'client secret': emu.credentials.clientSecret })
})
