import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { pino } from 'pino'
import { RedisConnection, RedisTokenStore } from '../src/auth/redis-token-store.js'
import { CLI, tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { allKeys, startRedis, type TestRedis } from './redis-helpers.js'
import { call, waitFor } from './token-lifecycle-helpers.js'
import { assertBoundedWait, assertOneHolderAtATime } from './lock-helpers.js'

const PREFIX = 'bp-lock:'
/** A lease no test outlives. */
const LONG = { leaseMs: 60_000, waitMs: 0 }
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A store with a Redis client of its own: one per process in real life. */
function store (t: TestContext, redis: TestRedis): RedisTokenStore {
  const connection = new RedisConnection({ store: { type: 'redis', url: redis.url, keyPrefix: PREFIX }, logger: pino({ level: 'silent' }) })
  const lease = connection.acquire()
  t.after(() => lease.release())
  return new RedisTokenStore({ connection, settings: new Map([['api', { type: 'client_credentials', clientId: 'c' }]]), logger: pino({ level: 'silent' }) })
}

async function lockKey (redis: TestRedis): Promise<string | undefined> {
  return (await allKeys(redis.raw)).find((k) => k.endsWith(':lock'))
}

test('the lock is exclusive: one holder at a time across clients, its key under the prefix with the lease as its expiry', async (t) => {
  const redis = await startRedis(t)
  const [a, b] = [store(t, redis), store(t, redis)]
  const held = await a.lock('api', LONG)
  assert.ok(held !== undefined)
  const key = await lockKey(redis)
  assert.match(key ?? '', /^bp-lock:api:[0-9a-f]{64}:lock$/)
  const ttl = await redis.raw.pttl(key as string)
  assert.ok(ttl > 50_000 && ttl <= 60_000, `PTTL ${ttl}`)
  assert.equal(await b.lock('api', LONG), undefined)
  assert.equal(await a.lock('api', LONG), undefined, 'not reentrant: a second renewal in the same process waits too')
  const other = await b.lock('other', LONG)
  assert.ok(other !== undefined, 'another route has a lock of its own')
  await held.release()
  const next = await b.lock('api', LONG)
  assert.ok(next !== undefined, 'released: the next one takes it')
  await next.release()
  await other.release()
  assert.deepEqual((await allKeys(redis.raw)).filter((k) => k.endsWith(':lock')), [], 'no lock left behind')

  await assertOneHolderAtATime(a, b)
})

test('only the owner releases (compare-and-delete in Lua): a holder that overran its lease leaves its successor\'s lock alone', async (t) => {
  const redis = await startRedis(t)
  const [a, b] = [store(t, redis), store(t, redis)]
  const slow = await a.lock('api', { leaseMs: 200, waitMs: 0 })
  assert.ok(slow !== undefined)
  const successor = await b.lock('api', { leaseMs: 60_000, waitMs: 10_000 })
  assert.ok(successor !== undefined, 'taken over once the lease ended')
  const key = await lockKey(redis) as string
  const value = await redis.raw.get(key)
  await slow.release()
  assert.equal(await redis.raw.get(key), value, 'the successor\'s lock is untouched')
  assert.equal(await a.lock('api', LONG), undefined, 'and still held')
  await successor.release()
  assert.equal(await redis.raw.exists(key), 0)
})

test('waiting for a held lock ends after waitMs; a lock let go meanwhile is taken at once', async (t) => {
  const redis = await startRedis(t)
  const [a, b] = [store(t, redis), store(t, redis)]
  await assertBoundedWait(a, b)
})

/** The route's token timeout: the lease is three of them, and the longest wait for the lock one. */
const TIMEOUT_MS = 1000

test('a process killed while renewing holds the lock until its lease ends: others wait at most the token timeout meanwhile, and renew after it', async (t) => {
  const redis = await startRedis(t)
  let hang = true
  const tokens = await tokenServer(t, async (_c, n, res) => {
    // The first token request is the one the doomed process makes: never answered.
    if (n === 1 && hang) return await new Promise<void>((resolve) => res.once('close', resolve))
    sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 })
  })
  t.after(() => { hang = false })
  const upstream = await recordingUpstream(t)
  const config = {
    store: { type: 'redis', url: redis.url, keyPrefix: PREFIX },
    routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'test-client', clientSecret: 'test-client-secret-value', timeout: TIMEOUT_MS } } }
  }
  const dir = tempDir(t)
  const file = join(dir, 'cfg.json')
  writeFileSync(file, JSON.stringify(config))

  // `token` takes the route's lock, then asks the token endpoint, and is killed before any answer.
  const doomed = spawn(process.execPath, [CLI, 'token', 'api', '-c', file], { env: { PATH: process.env.PATH }, stdio: 'ignore' })
  t.after(() => { if (doomed.exitCode === null && doomed.signalCode === null) doomed.kill('SIGKILL') })
  await waitFor(() => tokens.calls.length === 1, 'the token request of the process about to die', 15_000)
  const exited = once(doomed, 'exit')
  doomed.kill('SIGKILL')
  await exited
  const key = await lockKey(redis)
  assert.ok(key !== undefined, 'the dead process left its lock')
  assert.match(key, /^bp-lock:/)
  const leaseLeft = await redis.raw.pttl(key)
  assert.ok(leaseLeft > 0 && leaseLeft <= 3 * TIMEOUT_MS, `lease left: ${leaseLeft} ms`)
  const killedAt = Date.now()

  const proxy = await startProxy(t, config)
  const started = Date.now()
  assert.ok(started - killedAt + TIMEOUT_MS < leaseLeft, 'the first request comes well within the dead holder\'s lease')
  const first = await call(`${proxy.url}/api/a`)
  const waited = Date.now() - started
  // Within the lease: a bounded wait, then 503 without a token request.
  assert.equal(first.status, 503, first.text)
  assert.equal(first.json.error.code, 'TOKEN_UNAVAILABLE')
  assert.ok(waited >= TIMEOUT_MS - 50, `answered after ${waited} ms`)
  assert.ok(waited < TIMEOUT_MS + 2000, `answered after ${waited} ms: the wait is bounded by the token timeout, not the lease`)
  assert.equal(tokens.calls.length, 1)

  // After the lease the lock is free again: the next request renews (once the backoff allows).
  let answer = first
  const deadline = Date.now() + 15_000
  while (answer.status !== 200 && Date.now() < deadline) {
    await sleep(200)
    answer = await call(`${proxy.url}/api/b`)
  }
  assert.equal(answer.status, 200, answer.text)
  assert.ok(Date.now() - killedAt >= leaseLeft - 50, 'not before the lease ended')
  assert.equal(tokens.calls.length, 2, 'one token request after the lease')
  assert.equal(upstream.requests.length, 1)
})
