import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { REFUSAL_RENEWALS_PER_MINUTE } from '../src/auth/broker.js'
import { recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const SECOND = 1000
/** Real time allowed for a hammering loop: a proxy that paid a token request per refusal (1 s apart) would blow it. */
const LOOP_BUDGET_MS = 15_000

/** Which route a token request came from: each route has its own client id (client_secret_basic). */
function clientOf (c: TokenCall): string {
  return Buffer.from((c.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8').split(':')[0] as string
}

/**
 * Routes `a` and `b` on one token endpoint (each with its own client id). a's
 * upstream refuses `/always-refused` whatever the token, with `refusal`; b's
 * answers everything.
 */
async function setup (t: TestContext, options: { refusal?: number, retryOn?: number[], maxRequestsPerMinute?: number } = {}) {
  const clock = new ManualClock()
  const times: Array<{ client: string, at: number }> = []
  const tokens = await tokenServer(t, (c, n, res) => {
    times.push({ client: clientOf(c), at: clock.ms })
    sendJson(res, 200, { access_token: `token-${n}`, expires_in: 3600 })
  })
  const upstreamA = await recordingUpstream(t, (req, res) => req.url.startsWith('/always-refused')
    ? sendJson(res, options.refusal ?? 401, { error: 'not_for_you', seen: tokenOf(req) }, { 'www-authenticate': 'Bearer error="insufficient_scope"' })
    : sendJson(res, 200, { ok: true }))
  const upstreamB = await recordingUpstream(t)
  const route = (upstream: string, clientId: string): Record<string, unknown> => ({
    upstream,
    ...(options.retryOn === undefined ? {} : { retryOn: options.retryOn }),
    auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId, clientSecret: 'test-client-secret-value' }
  })
  const proxy = await startProxy(t, {
    ...(options.maxRequestsPerMinute === undefined ? {} : { tokens: { maxRequestsPerMinute: options.maxRequestsPerMinute } }),
    routes: { a: route(upstreamA.url, 'client-a'), b: route(upstreamB.url, 'client-b') }
  }, { now: clock.now })
  const callsOf = (client: string): number => times.filter((c) => c.client === client).length

  /** Sends up to `count` refused requests to route a, `stepMs` apart on the clock; stops early once a token request per request shows. */
  async function hammer (count: number, stepMs: number): Promise<Array<{ status: number, json: any, wwwAuthenticate: string | null }>> {
    const answers = []
    const started = Date.now()
    const before = callsOf('client-a')
    for (let i = 0; i < count && Date.now() - started < LOOP_BUDGET_MS && callsOf('client-a') - before <= 3 * REFUSAL_RENEWALS_PER_MINUTE + 3; i++) {
      const res = await call(`${proxy.url}/a/always-refused/${i}`)
      answers.push({ status: res.status, json: res.json, wwwAuthenticate: res.headers.get('www-authenticate') })
      clock.advance(stepMs)
    }
    return answers
  }
  return { clock, tokens, times, upstreamA, upstreamB, proxy, callsOf, hammer }
}

test('a path the upstream refuses whatever the token costs at most 3 token requests, not one per request', async (t) => {
  const s = await setup(t)
  assert.equal((await call(`${s.proxy.url}/a/ok`)).status, 200)
  assert.equal((await call(`${s.proxy.url}/b/ok`)).status, 200)
  assert.equal(s.callsOf('client-a'), 1)

  const answers = await s.hammer(50, 100)
  assert.ok(s.callsOf('client-a') - 1 <= REFUSAL_RENEWALS_PER_MINUTE, `route a caused ${s.callsOf('client-a') - 1} token requests for ${answers.length} refused requests`)
  assert.equal(answers.length, 50, 'all 50 requests answered within the time allowed')
  // The upstream's own refusal reaches the client as it was.
  for (const answer of answers) {
    assert.equal(answer.status, 401)
    assert.equal(answer.json?.error, 'not_for_you')
    assert.equal(answer.wwwAuthenticate, 'Bearer error="insufficient_scope"')
  }

  // The token kept is still good where the upstream takes it, and route b never noticed.
  const calls = s.tokens.calls.length
  assert.equal((await call(`${s.proxy.url}/a/ok`)).status, 200)
  assert.equal((await call(`${s.proxy.url}/b/ok`)).status, 200)
  assert.equal(s.tokens.calls.length, calls, 'no token request for either')
  assert.equal(s.callsOf('client-b'), 1)
})

test('over several minutes, refusals cause at most 3 token requests in any minute', async (t) => {
  const s = await setup(t)
  assert.equal((await call(`${s.proxy.url}/a/ok`)).status, 200)
  // Three minutes of refused requests, 2 s apart.
  const answers = await s.hammer(90, 2 * SECOND)
  assert.equal(answers.length, 90, 'all requests answered within the time allowed')
  const caused = s.times.filter((c) => c.client === 'client-a').slice(1).map((c) => c.at)
  for (const at of caused) {
    const inMinute = caused.filter((other) => other <= at && other > at - 60 * SECOND).length
    assert.ok(inMinute <= REFUSAL_RENEWALS_PER_MINUTE, `${inMinute} token requests in the minute up to ${new Date(at).toISOString()}`)
  }
  assert.equal((await call(`${s.proxy.url}/b/ok`)).status, 200)
})

test('refusals never spend the token endpoint budget that other routes need', async (t) => {
  // Six token requests a minute for both routes together.
  const s = await setup(t, { maxRequestsPerMinute: 6 })
  assert.equal((await call(`${s.proxy.url}/a/ok`)).status, 200)
  const answers = await s.hammer(20, 100)
  assert.equal(answers.length, 20)
  assert.ok(s.callsOf('client-a') <= 3, `route a made ${s.callsOf('client-a')} of the endpoint's 6 token requests`)

  // Route b's first token still comes, and so do its next ones.
  assert.equal((await call(`${s.proxy.url}/b/ok`)).status, 200)
  assert.equal(s.callsOf('client-b'), 1)
  for (const answer of answers) assert.equal(answer.status, 401)
})

test('with retryOn [401, 403], an upstream that always answers 403 costs at most 3 token requests too', async (t) => {
  const s = await setup(t, { refusal: 403, retryOn: [401, 403] })
  assert.equal((await call(`${s.proxy.url}/a/ok`)).status, 200)
  const answers = await s.hammer(30, 100)
  assert.equal(answers.length, 30)
  for (const answer of answers) assert.equal(answer.status, 403)
  assert.ok(s.callsOf('client-a') - 1 <= REFUSAL_RENEWALS_PER_MINUTE, `route a caused ${s.callsOf('client-a') - 1} token requests`)
})
