import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import { LOGIN_RECHECK_MS, TokenBroker } from '../src/auth/broker.js'
import { Redactor } from '../src/auth/redaction.js'
import { LoginRequired } from '../src/auth/token-error.js'
import { MemoryTokenStore } from '../src/auth/token-store.js'
import type { TokenSet } from '../src/auth/token.js'

/** A memory store that counts its reads. */
class CountingStore extends MemoryTokenStore {
  loads = 0
  override async load (key: string): Promise<TokenSet | undefined> {
    this.loads++
    return super.load(key)
  }
}

test('a flood of requests on a route without a login reads the store at most once a second, and a login stored meanwhile is taken', async () => {
  let now = 1_700_000_000_000
  let tokenRequests = 0
  const store = new CountingStore()
  const broker = new TokenBroker({
    name: 'person',
    source: {
      type: 'device_code',
      endpoint: 'http://127.0.0.1:9/token',
      secrets: Redactor.none,
      obtain: async () => { tokenRequests++; throw new Error('never called') },
      refresh: async () => { tokenRequests++; return { accessToken: 'refreshed', expiresIn: 300 } },
      login: async () => { throw new Error('not here') }
    },
    settings: { refreshAhead: 0.8, minValidity: 30, defaultTtl: 3600, maxRequestsPerMinute: 30 },
    logger: pino({ level: 'silent' }),
    store,
    now: () => now
  })
  const ask = async (): Promise<unknown> => { try { return await broker.token() } catch (err) { return err } }
  for (let i = 0; i < 200; i++) assert.ok(await ask() instanceof LoginRequired)
  assert.equal(store.loads, 1, 'one look in the store for the whole flood')
  now += LOGIN_RECHECK_MS
  for (let i = 0; i < 200; i++) assert.ok(await ask() instanceof LoginRequired)
  assert.equal(store.loads, 2)
  assert.equal(tokenRequests, 0)

  // `bearer-proxy login` in another process stores a login.
  await store.save('person', { accessToken: 'from-login', obtainedAt: now, expiresAt: now + 300_000, refreshToken: 'rt' })
  now += LOGIN_RECHECK_MS
  const token = await ask() as TokenSet
  assert.equal(token.accessToken, 'from-login')
  assert.equal(broker.status().state, 'valid')
  assert.equal(tokenRequests, 0)
  broker.close()
})
