import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { startVivacity, type VivacityOptions } from './fixtures/vivacity.js'
import {
  assertNoSecrets, assertReplayed, assertUnavailable, bearerOf, burst, call, non2xx, REPLAY_BODY, SkewClock,
  startSeedEmulator, startSeedProxy, steadyTraffic, type SeedProxyOptions
} from './seed-helpers.js'

// The shipped config/examples/vivacity.yaml against the Vivacity emulator:
// /get-token login, /refresh-token renewal, an expired token answered 403.

const METADATA = '/vivacity/v3/hardware/metadata'

async function setup (t: TestContext, emulator: VivacityOptions = {}, options: SeedProxyOptions = {}) {
  const emu = await startSeedEmulator(t, () => startVivacity(emulator))
  const env = { VIVACITY_URL: emu.url, VIVACITY_USERNAME: emu.credentials.username, VIVACITY_PASSWORD: emu.credentials.password }
  const proxy = await startSeedProxy(t, 'vivacity', env, options)
  return { emu, proxy }
}

test('vivacity.yaml as shipped: the first request on a cold proxy gets the hardware metadata', async (t) => {
  const { emu, proxy } = await setup(t)

  const answer = await call(`${proxy.url}${METADATA}`)

  assert.equal(answer.status, 200, answer.text)
  assert.equal(answer.json?.['1234']?.name, 'High Street / Station Road')
  assert.equal(emu.calls('/get-token'), 1)
  assert.equal(emu.requests.length, 1)
  assert.equal(emu.requests[0]?.path, '/v3/hardware/metadata')
  assert.equal(bearerOf(emu.requests[0]), emu.issuedAccessTokens()[0])
  assertNoSecrets({ logs: proxy.logs.text() }, { password: emu.credentials.password, 'access token': emu.issuedAccessTokens()[0] as string })
})

test('vivacity: 50 concurrent requests on a cold proxy cause exactly one /get-token call', async (t) => {
  const { emu, proxy } = await setup(t)

  const answers = await burst(`${proxy.url}${METADATA}`, 50)

  assert.deepEqual(non2xx(answers), [])
  assert.equal(emu.tokenRequests.length, 1)
  assert.equal(emu.calls('/get-token'), 1)
  assert.equal(new Set(emu.requests.map(bearerOf)).size, 1, 'every request carried the one token')
})

test('vivacity: 2 s tokens under 7 s of steady traffic are renewed through /refresh-token, never failing a request', async (t) => {
  const { emu, proxy } = await setup(t, { tokenTtl: 2 })

  const answers = await steadyTraffic(`${proxy.url}${METADATA}`, { durationMs: 7000, intervalMs: 50, maxRequests: 140 })

  assert.deepEqual(non2xx(answers), [])
  assert.ok(answers.length >= 100, `steady traffic sent ${answers.length} requests`)
  // No request reached the API with a token it refused (no replays): renewal came ahead of expiry.
  assert.equal(emu.requests.length, answers.length)
  assert.equal(emu.calls('/get-token'), 1, 'logged in once')
  const refreshes = emu.calls('/refresh-token')
  // One renewal per ~1.6 s of a 2 s token; never more often than the 1 s minimum interval.
  assert.ok(refreshes >= 3 && refreshes <= 8, `refreshed ${refreshes} times in 7 s`)
})

test('vivacity: after the tokens are revoked, a POST with a JSON body is replayed once on the 403 and succeeds', async (t) => {
  const clock = new SkewClock()
  const { emu, proxy } = await setup(t, {}, { now: clock.now })
  assert.equal((await call(`${proxy.url}${METADATA}`)).status, 200)
  const revoked = emu.issuedAccessTokens()[0]

  emu.revokeAll()
  // Past the 1 s minimum between token requests, instead of sleeping through it.
  clock.skip(1000)
  const answer = await call(`${proxy.url}/vivacity/v3/counts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REPLAY_BODY })

  assertReplayed(answer, emu, '/v3/counts', revoked as string)
  assert.deepEqual(answer.json?.body, JSON.parse(REPLAY_BODY.toString('utf8')))
  // The refresh token survived the revocation, so the new token came from /refresh-token.
  assert.equal(emu.calls('/get-token'), 1)
  assert.equal(emu.calls('/refresh-token'), 1)
})

test('vivacity: refused credentials give 502 TOKEN_REJECTED with Vivacity\'s reason and no password anywhere', async (t) => {
  const { emu, proxy } = await setup(t)
  emu.mode = 'rejectCredentials'

  const answer = await call(`${proxy.url}${METADATA}`)

  assert.equal(answer.status, 502, answer.text)
  assert.equal(answer.json?.error?.code, 'TOKEN_REJECTED')
  assert.equal(answer.json?.error?.route, 'vivacity')
  assert.match(answer.json?.error?.message ?? '', /Invalid user credentials/)
  assert.equal(emu.requests.length, 0, 'nothing reached the API')
  assertNoSecrets({ 'error body': answer.text, logs: proxy.logs.text() }, { password: emu.credentials.password })
})

test('vivacity: token server down on a cold start gives 503 with Retry-After, then recovers without a restart', async (t) => {
  const clock = new SkewClock()
  const { emu, proxy } = await setup(t, {}, { now: clock.now })
  emu.mode = 'down'

  const failed = await call(`${proxy.url}${METADATA}`)
  const retryAfter = assertUnavailable(failed, 'vivacity')
  assert.equal(emu.requests.length, 0)

  emu.mode = 'normal'
  clock.skip(retryAfter * 1000)
  const recovered = await call(`${proxy.url}${METADATA}`)

  assert.equal(recovered.status, 200, recovered.text)
  assert.equal(emu.calls('/get-token'), 2, 'one failed login, one that worked')
  assertNoSecrets({ 'error body': failed.text, logs: proxy.logs.text() }, { password: emu.credentials.password })
})
