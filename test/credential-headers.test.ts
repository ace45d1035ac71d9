import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { TokenBroker } from '../src/auth/broker.js'
import { tokenCredential } from '../src/auth/credential.js'
import { Redactor } from '../src/auth/redaction.js'
import { BEARER, type TokenSource } from '../src/auth/token-source.js'

const SETTINGS = { refreshAhead: 0.8, minValidity: 30, defaultTtl: 3600, maxRequestsPerMinute: 30 }
const REQUEST = { method: 'GET', url: 'https://api.example/items' }

function broker (endpoint: string | undefined): { broker: TokenBroker, obtained: () => number } {
  let n = 0
  const scheme: TokenSource = {
    type: 'test',
    endpoint,
    secrets: Redactor.of([]),
    obtain: async () => ({ accessToken: `token-${++n}`, expiresIn: 3600 })
  }
  const b = new TokenBroker({ name: 'api', source: scheme, settings: SETTINGS, logger: pino({ level: 'silent' }), minFetchIntervalMs: 0 })
  return { broker: b, obtained: () => n }
}

test('a cached token gives the credential headers at once, with no promise to await', async () => {
  const { broker: b } = broker('https://login.example/token')
  const credential = tokenCredential(b, BEARER, [401])
  const first = credential.headersFor(REQUEST)
  assert.ok(first instanceof Promise, 'no token yet: it is obtained')
  assert.deepEqual((await first).headers, [['authorization', 'Bearer token-1']])
  const cached = credential.headersFor(REQUEST)
  assert.ok(!(cached instanceof Promise), 'the cached token is used synchronously')
  assert.deepEqual(cached.headers, [['authorization', 'Bearer token-1']])
  b.close()
})

test('a retryOn answer drops the token it refused and asks for the request once more; other answers do not', async () => {
  const { broker: b, obtained } = broker('https://login.example/token')
  const credential = tokenCredential(b, BEARER, [401, 403])
  assert.equal(credential.renewable, true)
  const sent = await credential.headersFor(REQUEST)
  for (const status of [200, 404, 500]) assert.equal(credential.answered(sent, status, {}), false, `${status}`)
  assert.equal(obtained(), 1)
  assert.equal(credential.answered(sent, 403, {}), true, 'refused: send once more')
  const next = credential.headersFor(REQUEST)
  assert.ok(next instanceof Promise, 'the refused token is not served again')
  assert.deepEqual((await next).headers, [['authorization', 'Bearer token-2']])
  b.close()
})

test('a static key is not renewable: a refusal never asks for the request again', async () => {
  const { broker: b } = broker(undefined)
  const credential = tokenCredential(b, BEARER, [401])
  assert.equal(credential.renewable, false)
  const sent = await credential.headersFor(REQUEST)
  assert.equal(credential.answered(sent, 401, {}), false)
  assert.deepEqual(sent.headers, [['authorization', 'Bearer token-1']])
  b.close()
})
