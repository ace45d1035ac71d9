import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import { recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'
import { startRedis, type TestRedis } from './redis-helpers.js'
import { call } from './token-lifecycle-helpers.js'

/** Connections to the test server other than the test's own raw client. */
async function proxyConnections (redis: TestRedis): Promise<number> {
  const list = await redis.raw.client('LIST') as string
  const own = await redis.raw.client('ID') as number
  return list.split('\n').filter((l) => l.startsWith('id=') && !l.startsWith(`id=${own} `)).length
}

/** The count once it has settled on `expected` (closing takes a moment), or what it was after 5 s. */
async function settledConnections (redis: TestRedis, expected: number): Promise<number> {
  let count = await proxyConnections(redis)
  const deadline = Date.now() + 5000
  while (count !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    count = await proxyConnections(redis)
  }
  return count
}

test('one Redis client per process: kept across a reload that leaves the store as it was, replaced when it changes, closed on shutdown', async (t) => {
  const redis = await startRedis(t)
  const tokens = await tokenServer(t, (_c, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: 3600 }))
  const upstream = await recordingUpstream(t)
  const input = (keyPrefix: string, clientId = 'test-client') => ({
    listen: { host: '127.0.0.1', port: 0 },
    admin: false,
    store: { type: 'redis', url: redis.url, keyPrefix },
    routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId, clientSecret: 'test-client-secret-value' } } }
  })
  const server = await startTestServer(t, input('bp-a:'))
  assert.equal((await call(`${server.url}/api/x`)).status, 200)
  assert.equal(await proxyConnections(redis), 1)
  const first = server.current().redis?.connection
  assert.ok(first !== undefined)

  // Same store, another route config: the same client.
  await server.reload(parseConfig(input('bp-a:', 'other-client'), { env: {} }))
  assert.equal(server.current().redis?.connection, first)
  assert.equal((await call(`${server.url}/api/x`)).status, 200)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(await proxyConnections(redis), 1, 'the retired config did not close the shared client')

  // Another prefix: a new client; the old one is closed once the retired config is done.
  await server.reload(parseConfig(input('bp-b:'), { env: {} }))
  assert.notEqual(server.current().redis?.connection, first)
  assert.equal((await call(`${server.url}/api/x`)).status, 200)
  assert.equal(await settledConnections(redis, 1), 1, 'the old client is closed')

  await server.stop()
  assert.equal(await settledConnections(redis, 0), 0, 'closed on shutdown')
})
