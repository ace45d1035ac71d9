import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { TokenBroker } from '../src/auth/broker.js'
import { recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { startTestServer, type TestServerProcess } from './operability-helpers.js'
import { allKeys, startRedis, type TestRedis } from './redis-helpers.js'
import { call, waitFor } from './token-lifecycle-helpers.js'

const PREFIX = 'bp-outage:'
const PASSWORD = 'redis-pass-CANARY-0b8e41'
/** Short-lived tokens, renewed after half their life: renewals happen during the outage. */
const LIFETIME_S = 2
/** A request that needs the store while it is down or hung waits about a second at worst (2 command timeouts). */
const MAX_REQUEST_MS = 3000

async function setup (t: TestContext, redis: TestRedis, count: number) {
  const tokens = await tokenServer(t, (_c, n, res) => sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: LIFETIME_S }))
  const upstream = await recordingUpstream(t)
  const config = {
    admin: { host: '127.0.0.1', port: 0 },
    store: { type: 'redis', url: redis.url, keyPrefix: PREFIX },
    tokens: { minValidity: 0.5, refreshAhead: 0.5 },
    routes: {
      api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'test-client', clientSecret: 'test-client-secret-value', timeout: 2000 } },
      // A static key is config: never stored, so its store state is none whatever Redis does.
      fixed: { upstream: upstream.url, auth: { type: 'static', token: 'static-token-value' } }
    }
  }
  const servers: TestServerProcess[] = []
  for (let i = 0; i < count; i++) servers.push(await startTestServer(t, config))
  return { tokens, upstream, servers }
}

/** Requests round-robin over the servers for `ms`; every status, and the slowest answer. */
async function traffic (servers: TestServerProcess[], ms: number): Promise<{ statuses: number[], slowest: number }> {
  const statuses: number[] = []
  let slowest = 0
  const started = Date.now()
  for (let i = 0; Date.now() - started < ms && i < 10_000; i++) {
    const before = Date.now()
    statuses.push((await call(`${(servers[i % servers.length] as TestServerProcess).url}/api/item/${i}`)).status)
    slowest = Math.max(slowest, Date.now() - before)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { statuses, slowest }
}

async function routeStore (server: TestServerProcess, name = 'api'): Promise<string> {
  return ((await call(`${server.adminUrl as string}/routes`)).json.routes as Array<{ name: string, store: string }>).find((r) => r.name === name)?.store ?? '(no route)'
}

async function storeErrors (server: TestServerProcess): Promise<number> {
  const text = (await call(`${server.adminUrl as string}/metrics`)).text
  return [...text.matchAll(/^bearer_proxy_store_errors_total\{operation="[a-z_]+"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
}

function events (server: TestServerProcess, event: string): unknown[] {
  return server.logs.lines.filter((l) => l.event === event)
}

const currentToken = (server: TestServerProcess): string | undefined => (server.current().brokers.get('api') as TokenBroker).status().token?.accessToken

test('Redis stopped: every proxy keeps answering and renewing on its own, logs the outage once, counts it, shows it in /routes, and writes its token back when Redis returns', async (t) => {
  const redis = await startRedis(t, { password: PASSWORD })
  const { tokens, servers } = await setup(t, redis, 2)
  for (const server of servers) assert.equal((await call(`${server.url}/api/warm`)).status, 200)
  assert.equal(tokens.calls.length, 1, 'shared while Redis is up')
  for (const server of servers) assert.equal(await routeStore(server), 'ok')
  const entry = (await allKeys(redis.raw)).find((k) => /^bp-outage:api:[0-9a-f]{64}$/.test(k))
  assert.ok(entry !== undefined)

  await redis.stop()
  const down = await traffic(servers, 3000)
  assert.ok(down.statuses.length > 30, `traffic ran (${down.statuses.length})`)
  assert.deepEqual(down.statuses.filter((s) => s !== 200), [], 'every request answered 200')
  assert.ok(down.slowest < MAX_REQUEST_MS, `slowest answer ${down.slowest} ms`)
  assert.ok(tokens.calls.length >= 3, `renewed on their own meanwhile (${tokens.calls.length} token requests)`)
  for (const server of servers) {
    assert.equal(events(server, 'store_unreachable').length, 1, 'the outage is logged once, not per request or renewal')
    assert.deepEqual(server.logs.lines.filter((l) => (l.level as number) >= 40 && l.event !== 'store_unreachable').map((l) => l.event), [], 'no other warning')
    assert.equal(await routeStore(server), 'unreachable')
    assert.equal(await routeStore(server, 'fixed'), 'none')
    assert.ok(await storeErrors(server) > 0, 'store errors counted in /metrics')
  }

  await redis.start()
  // Redis came back empty (no persistence): the proxies put their tokens back within seconds.
  await waitFor(() => servers.every((s) => events(s, 'store_recovered').length === 1), 'both proxies to see Redis back', 8000)
  let stored: string | null = null
  const deadline = Date.now() + 8000
  while (stored === null && Date.now() < deadline) {
    stored = await redis.raw.get(entry).catch(() => null)
    if (stored === null) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.ok(stored !== null, 'the token was written back under the same key')
  await waitFor(() => servers.some((s) => events(s, 'token_written_back').length > 0), 'a proxy to log its write-back', 8000)
  const written = (JSON.parse(stored) as { token: { accessToken: string } }).token.accessToken
  assert.ok(/^token-\d+$/.test(written), written)
  assert.ok((await allKeys(redis.raw)).includes(`${PREFIX}secret`), 'the store secret was put back too')
  for (const server of servers) {
    assert.equal(await routeStore(server), 'ok')
    assert.equal(events(server, 'store_unreachable').length, 1)
  }
  // Sharing again: the next renewal is made by one of them and adopted by the other.
  await traffic(servers, 2500)
  await waitFor(() => currentToken(servers[0] as TestServerProcess) === currentToken(servers[1] as TestServerProcess), 'both proxies to hold the same token again', 5000)

  // The URL's password is in no log line, /routes or /metrics.
  for (const server of servers) {
    assert.ok(!server.logs.text().includes(PASSWORD))
    assert.ok(!(await call(`${server.adminUrl as string}/routes`)).text.includes(PASSWORD))
    assert.ok(!(await call(`${server.adminUrl as string}/metrics`)).text.includes(PASSWORD))
  }
})

test('a hung Redis (it accepts but never answers) costs a request needing a token about a second, not a hang', async (t) => {
  const redis = await startRedis(t)
  const { tokens, servers } = await setup(t, redis, 1)
  const server = servers[0] as TestServerProcess
  // Connected and ready, then frozen: commands go out and nothing comes back.
  await waitFor(() => server.current().storeHealth() === 'ok', 'the connection')
  redis.pause()
  t.after(() => redis.resume())
  const started = Date.now()
  const res = await call(`${server.url}/api/cold`)
  const waited = Date.now() - started
  assert.equal(res.status, 200, res.text)
  assert.ok(waited < MAX_REQUEST_MS, `answered after ${waited} ms`)
  assert.equal(tokens.calls.length, 1)
  assert.equal(events(server, 'store_unreachable').length, 1)
  const more = await traffic(servers, 1500)
  assert.deepEqual(more.statuses.filter((s) => s !== 200), [])
  assert.ok(more.slowest < MAX_REQUEST_MS, `slowest answer ${more.slowest} ms`)

  redis.resume()
  await waitFor(() => events(server, 'store_recovered').length === 1, 'Redis back', 8000)
  // The lock SET that timed out ran when Redis woke: that lock is let go at once, not held for its lease.
  await waitFor(() => events(server, 'token_written_back').length >= 1, 'the token written back', 8000)
  assert.deepEqual((await allKeys(redis.raw)).filter((k) => k.endsWith(':lock')), [])
  const renewed = await traffic(servers, 2500)
  assert.deepEqual(renewed.statuses.filter((s) => s !== 200), [], 'renewals go on under the lock again')
  assert.ok(!server.logs.lines.some((l) => l.event === 'token_failed'), 'no renewal waited for a lock nobody held')
})

test('a proxy started while Redis is down serves at once, and writes its token to Redis when it comes up', async (t) => {
  const redis = await startRedis(t)
  await redis.stop()
  const started = Date.now()
  const { tokens, servers } = await setup(t, redis, 1)
  const server = servers[0] as TestServerProcess
  const res = await call(`${server.url}/api/a`)
  assert.equal(res.status, 200, res.text)
  assert.ok(Date.now() - started < 2 * MAX_REQUEST_MS, `started and answered in ${Date.now() - started} ms`)
  assert.equal(tokens.calls.length, 1)
  assert.equal(await routeStore(server), 'unreachable')
  assert.equal(events(server, 'store_unreachable').length, 1)

  await redis.start()
  await waitFor(() => events(server, 'token_written_back').length >= 1, 'the token written to Redis', 8000)
  const keys = await allKeys(redis.raw)
  assert.ok(keys.some((k) => /^bp-outage:api:[0-9a-f]{64}$/.test(k)), keys.join(' '))
  assert.equal(await routeStore(server), 'ok')
})
