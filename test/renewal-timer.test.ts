import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { test, type TestContext } from 'node:test'
import { buildApp } from '../src/app.js'
import type { TokenBroker } from '../src/auth/broker.js'
import { DEMO_TOKEN_TTL, startDemoServers } from '../src/demo.js'
import { createLogger } from '../src/logger.js'
import { clientCredentialsRoute, LogSink, recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'
import { call, ManualClock, tokenOf, waitFor } from './token-lifecycle-helpers.js'

const SECOND = 1000
/** With the defaults (refreshAhead 0.8, minValidity 30): renewal from 240 s on, usable until 270 s. */
const LIFETIME = 300

async function setup (t: TestContext, respond: (call: TokenCall, n: number, res: ServerResponse) => void | Promise<void>) {
  const clock = new ManualClock()
  const start = clock.ms
  const tokens = await tokenServer(t, respond)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now, timers: clock })
  const broker = proxy.brokers.get('api') as TokenBroker
  const send = async (): Promise<string | undefined> => {
    const res = await call(`${proxy.url}/api/x`)
    assert.equal(res.status, 200, res.text)
    return tokenOf(upstream.requests.at(-1))
  }
  const at = (seconds: number): void => { clock.ms = start + seconds * SECOND }
  const events = (): unknown[] => proxy.logs.lines.filter((l) => String(l.event).startsWith('token_') && l.event !== 'token_idle').map((l) => l.event)
  /** Lets a token request that should not happen have its chance to. */
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100))
  return { clock, tokens, upstream, proxy, broker, send, at, events, settle }
}

test('a route that served a request is renewed on time while idle, then goes cold until its next request', async (t) => {
  const s = await setup(t, (_call, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME }))
  assert.equal(await s.send(), 'token-1')

  s.at(239)
  await s.settle()
  assert.equal(s.tokens.calls.length, 1, 'not before the renewal point')
  s.at(240)
  await waitFor(() => s.broker.status().token?.accessToken === 'token-2', 'the renewal on its timer, with no request')
  assert.equal(s.tokens.calls.length, 2)
  const renewed = s.proxy.logs.lines.find((l) => l.event === 'token_renewed')
  assert.equal(renewed?.msg, 'token renewed', 'a fresh login after a token is a renewal')

  // token-2 served no request, and none came for a whole lifetime: no renewal at its point, nor later.
  s.at(480)
  await s.settle()
  s.at(3000)
  await s.settle()
  assert.equal(s.tokens.calls.length, 2, 'a cold route makes no token request')

  assert.equal(await s.send(), 'token-3', 'the next request obtains a token again')
  assert.deepEqual(s.events(), ['token_obtained', 'token_renewed', 'token_obtained'])
})

test('a route in use is renewed at each renewal point, by refresh token when it holds one', async (t) => {
  const s = await setup(t, (_call, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME, refresh_token: `rt-${n}` }))
  assert.equal(await s.send(), 'token-1')
  s.at(240)
  // Cached before the clock moves on: token-2's lifetime counts from when its answer came.
  await waitFor(() => s.broker.status().token?.accessToken === 'token-2', 'the first renewal')
  // A request during token-2's lifetime keeps the route warm for token-3's renewal too.
  s.at(250)
  assert.equal(await s.send(), 'token-2')
  s.at(480)
  await waitFor(() => s.tokens.calls.length === 3, 'the second renewal, on its timer')
  await waitFor(() => s.broker.status().token?.accessToken === 'token-3', 'token-3 cached')
  assert.deepEqual(s.tokens.calls.map((c) => c.form.get('refresh_token')), [null, 'rt-1', 'rt-2'])
  assert.deepEqual(s.events(), ['token_obtained', 'token_refreshed', 'token_refreshed'])
  const refreshed = s.proxy.logs.lines.find((l) => l.event === 'token_refreshed')
  assert.equal(refreshed?.msg, 'token refreshed')
  assert.equal(await s.send(), 'token-3')
})

test('a route whose timer renewed its token stays warm when its next request comes more than a lifetime after the last one', async (t) => {
  const s = await setup(t, (_call, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME }))
  assert.equal(await s.send(), 'token-1')
  s.at(240)
  await waitFor(() => s.broker.status().token?.accessToken === 'token-2', 'the first renewal, on its timer')
  // Over a lifetime after the request before, but inside token-2's lifetime (240 s to 540 s): the
  // route was renewed because it was in use, and is in use still.
  s.at(310)
  assert.equal(await s.send(), 'token-2')
  s.at(480)
  await waitFor(() => s.broker.status().token?.accessToken === 'token-3', 'the second renewal, on its timer')
  assert.equal(s.tokens.calls.length, 3)
  assert.deepEqual(s.events(), ['token_obtained', 'token_renewed', 'token_renewed'])
  assert.equal(await s.send(), 'token-3')
})

test('after a failed background renewal the timer follows the backoff and honours Retry-After', async (t) => {
  const s = await setup(t, (_call, n, res) => n === 2
    ? sendJson(res, 503, { error: 'temporarily_unavailable' }, { 'retry-after': '20' })
    : sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME }))
  assert.equal(await s.send(), 'token-1')
  s.at(240)
  await waitFor(() => s.broker.status().lastError !== undefined, 'the renewal on its timer to fail')
  assert.equal(s.tokens.calls.length, 2)

  const failed = s.proxy.logs.lines.find((l) => l.event === 'token_failed')
  assert.ok(Number.isInteger(failed?.retryInMs), `retryInMs is whole milliseconds (got ${String(failed?.retryInMs)})`)
  assert.equal(failed?.retryInMs, 20 * SECOND)

  s.at(259)
  await s.settle()
  assert.equal(s.tokens.calls.length, 2, 'not inside the Retry-After')
  s.at(260)
  await waitFor(() => s.broker.status().token?.accessToken === 'token-3', 'the retry once the Retry-After has passed')
  assert.deepEqual(s.events(), ['token_obtained', 'token_failed', 'token_renewed'])
  assert.equal(await s.send(), 'token-3')
})

test('closing the proxy clears its renewal timers', async (t) => {
  const s = await setup(t, (_call, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME }))
  await s.send()
  assert.equal(s.clock.pending, 1, 'one renewal timer for the route')
  await s.proxy.close()
  assert.equal(s.clock.pending, 0)
  s.at(240)
  await s.settle()
  assert.equal(s.tokens.calls.length, 1, 'a closed broker renews nothing')
})

test('a pending renewal timer does not keep the process alive', () => {
  // A broker holding a token with hours to go, never closed: the process still ends at once.
  const broker = pathToFileURL(new URL('../src/auth/broker.ts', import.meta.url).pathname).href
  const script = `
    import pino from 'pino'
    import { TokenBroker } from ${JSON.stringify(broker)}
    const scheme = { type: 'test', endpoint: 'http://127.0.0.1:9/token', secrets: [], obtain: async () => ({ accessToken: 'token-1', expiresIn: 3600 }) }
    const b = new TokenBroker({ name: 'api', source: scheme, settings: { refreshAhead: 0.8, minValidity: 30, defaultTtl: 3600, maxRequestsPerMinute: 30 }, logger: pino({ level: 'silent' }) })
    await b.token()
    b.token()
    console.log('served')
  `
  const started = Date.now()
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(child.stdout.trim(), 'served', child.stderr)
  assert.equal(child.status, 0, child.stderr)
  assert.ok(Date.now() - started < 25_000, 'the process ended on its own')
})

test('the demo renews its token in the background after one request, then rests', async (t) => {
  const clock = new ManualClock()
  const servers = await startDemoServers({ host: '127.0.0.1', port: 0 })
  t.after(() => servers.close())
  const logs = new LogSink()
  const proxy = await buildApp(servers.config, { logger: createLogger({ level: 'debug', destination: logs }), now: clock.now, timers: clock })
  await proxy.app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => proxy.close())
  const url = `http://127.0.0.1:${(proxy.app.server.address() as AddressInfo).port}`
  const renewals = (): number => logs.lines.filter((l) => l.event === 'token_renewed').length

  const hello = await call(`${url}/demo/hello`)
  assert.equal(hello.status, 200)
  assert.equal(hello.json.token.number, 1)

  // refreshAhead (0.8) of the demo's token lifetime later, with no request in between.
  clock.advance(DEMO_TOKEN_TTL * 0.8 * SECOND)
  await waitFor(() => renewals() === 1, 'the demo\'s background renewal in the log')

  // Unused for a whole token lifetime: no more renewals until the next request.
  clock.advance(DEMO_TOKEN_TTL * SECOND)
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(renewals(), 1)
  const again = await call(`${url}/demo/hello`)
  assert.equal(again.status, 200)
  assert.equal(again.json.token.number, 3, 'a new token after the renewed one expired unused')
})
