import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { startNetography, type NetographyOptions } from './fixtures/netography.js'
import {
  assertNoSecrets, assertReplayed, assertUnavailable, bearerOf, burst, call, non2xx, REPLAY_BODY, SkewClock,
  startSeedEmulator, startSeedProxy, steadyTraffic, type SeedProxyOptions
} from './seed-helpers.js'

// The shipped config/examples/netography-api-key.yaml (NETOSECRET, request
// token at /api/v1/auth/token) and netography-user.yaml (form login at
// /api/auth/bearer/token) against the Netography emulator; both renew at
// /api/auth/bearer/refresh.

type Netography = Awaited<ReturnType<typeof startNetography>>

interface Flow {
  example: string
  /** Where this flow logs in. */
  login: string
  env: (emu: Netography) => Record<string, string>
  secrets: (emu: Netography) => Record<string, string>
}

const FLOWS: Flow[] = [
  {
    example: 'netography-api-key',
    login: '/api/v1/auth/token',
    // No upstream in the file: it comes from the secret's url.
    env: (emu) => ({ NETOSECRET: emu.credentials.netosecret }),
    secrets: (emu) => ({ sharedsecret: emu.credentials.apiKey.sharedsecret, appkey: emu.credentials.apiKey.appkey, netosecret: emu.credentials.netosecret })
  },
  {
    example: 'netography-user',
    login: '/api/auth/bearer/token',
    env: (emu) => ({ NETOGRAPHY_URL: emu.url, NETOGRAPHY_USERNAME: emu.credentials.username, NETOGRAPHY_PASSWORD: emu.credentials.password }),
    secrets: (emu) => ({ password: emu.credentials.password })
  }
]

const REFRESH = '/api/auth/bearer/refresh'
const DEVICES = '/netography/api/v1/devices'

async function setup (t: TestContext, flow: Flow, emulator: NetographyOptions = {}, options: SeedProxyOptions = {}) {
  const emu = await startSeedEmulator(t, () => startNetography(emulator))
  const proxy = await startSeedProxy(t, flow.example, flow.env(emu), options)
  return { emu, proxy }
}

for (const flow of FLOWS) {
  test(`${flow.example}.yaml as shipped: the first request on a cold proxy gets the devices`, async (t) => {
    const { emu, proxy } = await setup(t, flow)

    const answer = await call(`${proxy.url}${DEVICES}`)

    assert.equal(answer.status, 200, answer.text)
    assert.equal(answer.json?.data?.[0]?.name, 'edge-router-1')
    assert.equal(emu.calls(flow.login), 1)
    assert.equal(emu.requests.length, 1)
    assert.equal(emu.requests[0]?.path, '/api/v1/devices')
    assert.equal(bearerOf(emu.requests[0]), emu.issuedAccessTokens()[0])
    assertNoSecrets({ logs: proxy.logs.text() }, { ...flow.secrets(emu), 'access token': emu.issuedAccessTokens()[0] as string })
  })

  test(`${flow.example}: 50 concurrent requests on a cold proxy cause exactly one token request`, async (t) => {
    const { emu, proxy } = await setup(t, flow)

    const answers = await burst(`${proxy.url}${DEVICES}`, 50)

    assert.deepEqual(non2xx(answers), [])
    assert.equal(emu.tokenRequests.length, 1)
    assert.equal(emu.calls(flow.login), 1)
    assert.equal(new Set(emu.requests.map(bearerOf)).size, 1, 'every request carried the one token')
  })
}

// Both flows at once: they are independent (own emulator, own proxy) and each needs 7 s of traffic.
test('netography: 2 s tokens under 7 s of steady traffic are renewed at /api/auth/bearer/refresh, never failing a request', { concurrency: true }, async (t) => {
  await Promise.all(FLOWS.map((flow) => t.test(flow.example, async (t) => {
    const { emu, proxy } = await setup(t, flow, { tokenTtl: 2 })

    const answers = await steadyTraffic(`${proxy.url}${DEVICES}`, { durationMs: 7000, intervalMs: 50, maxRequests: 140 })

    assert.deepEqual(non2xx(answers), [])
    assert.ok(answers.length >= 100, `steady traffic sent ${answers.length} requests`)
    // No request reached the API with a token it refused (no replays): renewal came ahead of expiry.
    assert.equal(emu.requests.length, answers.length)
    assert.equal(emu.calls(flow.login), 1, 'logged in once')
    const refreshes = emu.calls(REFRESH)
    // One renewal per ~1.6 s of a 2 s token; never more often than the 1 s minimum interval.
    assert.ok(refreshes >= 3 && refreshes <= 8, `refreshed ${refreshes} times in 7 s`)
  })))
})

for (const flow of FLOWS) {
  test(`${flow.example}: after the tokens are revoked, a POST with a JSON body is replayed once on the 401 and succeeds`, async (t) => {
    const clock = new SkewClock()
    const { emu, proxy } = await setup(t, flow, {}, { now: clock.now })
    assert.equal((await call(`${proxy.url}${DEVICES}`)).status, 200)
    const revoked = emu.issuedAccessTokens()[0]

    emu.revokeAll()
    // Past the 1 s minimum between token requests, instead of sleeping through it.
    clock.skip(1000)
    const answer = await call(`${proxy.url}/netography/api/v1/search/flow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REPLAY_BODY })

    assertReplayed(answer, emu, '/api/v1/search/flow', revoked as string)
    assert.deepEqual(answer.json?.body, JSON.parse(REPLAY_BODY.toString('utf8')))
    // The refresh token survived the revocation, so the new token came from the refresh endpoint.
    assert.equal(emu.calls(flow.login), 1)
    assert.equal(emu.calls(REFRESH), 1)
  })

  test(`${flow.example}: refused credentials give 502 TOKEN_REJECTED with Netography's message and no secret anywhere`, async (t) => {
    const { emu, proxy } = await setup(t, flow)
    emu.mode = 'rejectCredentials'

    const answer = await call(`${proxy.url}${DEVICES}`)

    assert.equal(answer.status, 502, answer.text)
    assert.equal(answer.json?.error?.code, 'TOKEN_REJECTED')
    assert.equal(answer.json?.error?.route, 'netography')
    assert.match(answer.json?.error?.message ?? '', /Missing or invalid credentials/)
    assert.equal(emu.calls(flow.login), 1)
    assert.equal(emu.requests.length, 0, 'nothing reached the API')
    assertNoSecrets({ 'error body': answer.text, logs: proxy.logs.text() }, flow.secrets(emu))
  })
}

// The API-key flow's token endpoint hangs (request tokens time out), the user flow's is down.
const OUTAGES = [
  { flow: 0, mode: 'hang', what: 'a hanging token endpoint', tokenTimeout: 300, note: 'one request token that got no answer, one that worked' },
  { flow: 1, mode: 'down', what: 'token server down', tokenTimeout: undefined, note: 'one failed login, one that worked' }
] as const

for (const outage of OUTAGES) {
  const flow = FLOWS[outage.flow] as Flow
  test(`${flow.example}: ${outage.what} on a cold start gives 503 with Retry-After, then recovers without a restart`, async (t) => {
    const clock = new SkewClock()
    const { emu, proxy } = await setup(t, flow, {}, { now: clock.now, ...(outage.tokenTimeout === undefined ? {} : { tokenTimeout: outage.tokenTimeout }) })
    emu.mode = outage.mode

    const failed = await call(`${proxy.url}${DEVICES}`)
    const retryAfter = assertUnavailable(failed, 'netography')
    assert.equal(emu.requests.length, 0)

    emu.mode = 'normal'
    clock.skip(retryAfter * 1000)
    const recovered = await call(`${proxy.url}${DEVICES}`)

    assert.equal(recovered.status, 200, recovered.text)
    assert.equal(emu.calls(flow.login), 2, outage.note)
    assertNoSecrets({ 'error body': failed.text, logs: proxy.logs.text() }, flow.secrets(emu))
  })
}
