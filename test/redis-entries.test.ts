import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli, tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { allKeys, startRedis, type TestRedis } from './redis-helpers.js'
import { call, tokenOf } from './token-lifecycle-helpers.js'

const PREFIX = 'bp-entries:'
const ACCESS = 'access-CANARY-3f9a0c'
const REFRESH = 'refresh-CANARY-c81d2e'
/** 32 random bytes in base64: used as the key itself. */
const KEY = 'q7Jx2m9PzL4vR8tW1yB6nC3dF5gH0kS2aE7uI9oQ4Xc='

async function entryKeys (redis: TestRedis): Promise<string[]> {
  return (await allKeys(redis.raw)).filter((k) => /^bp-entries:api:[0-9a-f]{64}$/.test(k))
}

function auth (tokenUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'client_credentials', tokenUrl, clientId: 'test-client', clientSecret: 'test-client-secret-value', ...extra }
}

for (const [label, stateKey, secretKey] of [['a key', KEY, false], ['a passphrase', 'correct horse battery staple', true]] as const) {
  test(`with stateKey (${label}) the entry in Redis is a JWE: no token in clear, in any encoding`, async (t) => {
    const redis = await startRedis(t)
    const tokens = await tokenServer(t, (_c, _n, res) => sendJson(res, 200, { access_token: ACCESS, expires_in: 3600, refresh_token: REFRESH }))
    const upstream = await recordingUpstream(t)
    const proxy = await startProxy(t, { store: { type: 'redis', url: redis.url, keyPrefix: PREFIX }, stateKey, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl) } } })
    assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
    const [key] = await entryKeys(redis)
    assert.ok(key !== undefined)
    const value = await redis.raw.get(key) as string
    assert.match(value, /^[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+$/, 'compact JWE, dir: no encrypted key part')
    for (const secret of [ACCESS, REFRESH, 'test-client-secret-value']) {
      for (const encoded of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')]) assert.ok(!value.includes(encoded))
    }
    // A key needs nothing from Redis; a passphrase is salted with the store's secret there.
    assert.equal((await allKeys(redis.raw)).includes(`${PREFIX}secret`), secretKey)

    // Another process with the same key reads it: no token request.
    const second = await startProxy(t, { store: { type: 'redis', url: redis.url, keyPrefix: PREFIX }, stateKey, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl) } } })
    assert.equal((await call(`${second.url}/api/b`)).status, 200)
    assert.equal(tokens.calls.length, 1)
    // One with another key cannot: its entry names are keyed with it too, so it finds none and obtains its own.
    const other = await startProxy(t, { store: { type: 'redis', url: redis.url, keyPrefix: PREFIX }, stateKey: `${stateKey}-other`, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl) } } })
    assert.equal((await call(`${other.url}/api/c`)).status, 200)
    assert.equal(tokens.calls.length, 2)
  })
}

test('an entry expires with its token, or with its refresh token when that has a known expiry; a refresh token of unknown expiry keeps it', async (t) => {
  const redis = await startRedis(t)
  const answers = [
    { access_token: 'a-1', expires_in: 600 },
    { access_token: 'a-2', expires_in: 600, refresh_token: 'r-2', refresh_expires_in: 7200 },
    { access_token: 'a-3', expires_in: 600, refresh_token: 'r-3' }
  ]
  const upstream = await recordingUpstream(t)
  const ttls: number[] = []
  for (const [i, answer] of answers.entries()) {
    const tokens = await tokenServer(t, (_c, _n, res) => sendJson(res, 200, answer))
    const prefix = `bp-ttl-${i}:`
    const proxy = await startProxy(t, { store: { type: 'redis', url: redis.url, keyPrefix: prefix }, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl) } } })
    assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
    const key = (await allKeys(redis.raw)).find((k) => k.startsWith(`${prefix}api:`)) as string
    ttls.push(await redis.raw.pttl(key))
  }
  const [access, refresh, forever] = ttls as [number, number, number]
  assert.ok(access > 590_000 && access <= 600_000, `access token only: ${access}`)
  assert.ok(refresh > 7_190_000 && refresh <= 7_200_000, `refresh token with an expiry: ${refresh}`)
  assert.equal(forever, -1, 'refresh token of unknown expiry: no expiry')
})

test('different credentials never share an entry; a token the upstream refuses is dropped from Redis too', async (t) => {
  const redis = await startRedis(t)
  const tokens = await tokenServer(t, (_c, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: 3600 }))
  const upstream = await recordingUpstream(t, (req, res) => {
    if (tokenOf(req) === 'token-1') return sendJson(res, 401, { error: 'revoked' })
    sendJson(res, 200, { ok: true })
  })
  const store = { type: 'redis', url: redis.url, keyPrefix: PREFIX }
  const a = await startProxy(t, { store, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl) } } })
  const b = await startProxy(t, { store, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl, { clientSecret: 'another-client-secret' }) } } })

  // a gets token-1, which the upstream refuses: dropped (here and in Redis), token-2 obtained and stored.
  assert.equal((await call(`${a.url}/api/x`)).status, 200)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'])
  // b has other credentials: its own token request, its own entry.
  assert.equal((await call(`${b.url}/api/y`)).status, 200)
  assert.equal(tokens.calls.length, 3)
  const keys = await entryKeys(redis)
  assert.equal(keys.length, 2)
  const stored = await Promise.all(keys.map(async (k) => (JSON.parse(await redis.raw.get(k) as string) as { token: { accessToken: string } }).token.accessToken))
  assert.deepEqual(stored.sort(), ['token-2', 'token-3'], 'the refused token-1 is in no entry')
})

test('`token` and `check` share the Redis store with a running proxy, and exit when done', async (t) => {
  const redis = await startRedis(t)
  const tokens = await tokenServer(t, (_c, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: 3600 }))
  const upstream = await recordingUpstream(t)
  const config = { store: { type: 'redis', url: redis.url, keyPrefix: PREFIX }, routes: { api: { upstream: upstream.url, auth: auth(tokens.tokenUrl) } } }
  const proxy = await startProxy(t, config)
  assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
  const file = join(tempDir(t), 'cfg.json')
  writeFileSync(file, JSON.stringify(config))
  const printed = await runCli(['token', 'api', '-c', file], { timeoutMs: 15_000 })
  assert.equal(printed.code, 0, printed.stderr)
  assert.equal(printed.stdout, 'token-1\n', 'the stored token, no token request')
  const checked = await runCli(['check', '-c', file], { timeoutMs: 15_000 })
  assert.equal(checked.code, 0, checked.stderr)
  assert.match(checked.stdout, /^api\t\/api\tclient_credentials\tok\texpires in \d+s\n$/)
  assert.equal(tokens.calls.length, 1)
})
