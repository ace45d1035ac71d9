import { test } from 'node:test'
import assert from 'node:assert/strict'
import { exportPKCS8, generateKeyPair } from 'jose'
import { pino } from 'pino'
import { createBrokers } from '../src/brokers.js'
import { parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'
import { tempDir } from './cli-helpers.js'
import { parseIssues } from './config-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { tokenFiles } from './state-files.js'

const TOKEN_URL = 'https://idp.example/token'
const CLIENT = { type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientSecret: 's-123456' }

function issues (auth: Record<string, unknown>): string[] {
  return parseIssues({ routes: { r: { upstream: 'https://api.example', auth } } })
}

async function brokerIssues (auth: Record<string, unknown>): Promise<string[]> {
  const config = parseConfig({ admin: false, routes: { r: { upstream: 'https://api.example', auth } } }, { env: {} })
  try {
    const { brokers } = await createBrokers(config, { logger: pino({ level: 'silent' }) })
    for (const broker of brokers.values()) broker.close()
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.issues
  }
  return []
}

test('dpop mistakes name their key under the auth block', () => {
  assert.deepEqual(issues({ ...CLIENT, dpop: { alg: 'HS256' } }), [
    'routes.r.auth.dpop.alg: Invalid option: expected one of "ES256"|"ES384"|"ES512"|"EdDSA"|"Ed25519"|"RS256"|"RS384"|"RS512"|"PS256"|"PS384"|"PS512"'
  ])
  assert.deepEqual(issues({ ...CLIENT, dpop: 'yes' }), ['routes.r.auth.dpop: expected object, received string'])
  assert.deepEqual(issues({ ...CLIENT, dpop: { alg: 'ES256', nonce: 'x' } }), ['routes.r.auth.dpop.nonce: unknown key'])
  // Only the OAuth grants take it.
  assert.deepEqual(issues({ type: 'static', token: 'k-123456', dpop: true }), ['routes.r.auth.dpop: unknown key'])
  for (const dpop of [true, false, { alg: 'EdDSA' }]) {
    const config = parseConfig({ routes: { r: { upstream: 'https://api.example', auth: { ...CLIENT, dpop } } } }, { env: {} })
    assert.deepEqual((config.routes[0]?.auth as { dpop?: unknown }).dpop, dpop === true ? {} : dpop === false ? undefined : dpop)
  }
})

test('an unreadable dpop key, or one that does not fit its alg, is a config error naming it and never quoting it', async () => {
  const rsa = await generateKeyPair('RS256', { extractable: true })
  const pem = await exportPKCS8(rsa.privateKey)
  assert.deepEqual(await brokerIssues({ ...CLIENT, dpop: { key: 'not-a-key-SECRET-91c2' } }), ['routes.r.auth.dpop.key: is not a readable private key (PEM or JWK)'])
  const mismatch = await brokerIssues({ ...CLIENT, dpop: { alg: 'ES256', key: pem } })
  assert.deepEqual(mismatch, ['routes.r.auth.dpop: the key does not fit algorithm ES256'])
  // An RSA key with no alg signs RS256 proofs.
  assert.deepEqual(await brokerIssues({ ...CLIENT, dpop: { key: pem } }), [])
})

test('tokens bound to a key made at start stay in memory; those of a configured key are stored', async (t) => {
  const tokens = await tokenServer(t, (_c, n, res) => { sendJson(res, 200, { access_token: `token-${n}`, token_type: 'DPoP', expires_in: 3600 }) })
  const upstream = await recordingUpstream(t)
  const key = await exportPKCS8((await generateKeyPair('ES256', { extractable: true })).privateKey)
  const dir = tempDir(t)
  const auth = { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'c', clientSecret: 'store-secret-31' }
  const proxy = await startProxy(t, {
    stateDir: dir,
    routes: {
      made: { upstream: upstream.url, auth: { ...auth, dpop: true } },
      given: { upstream: upstream.url, auth: { ...auth, dpop: { key } } }
    }
  })
  for (const route of ['made', 'given']) {
    const res = await fetch(`${proxy.url}/${route}/x`)
    assert.equal(res.status, 200, route)
    await res.arrayBuffer()
  }
  assert.deepEqual(tokenFiles(dir, 'made'), [])
  assert.equal(tokenFiles(dir, 'given').length, 1)
  const warning = proxy.logs.lines.find((l) => l.event === 'dpop_key_ephemeral')
  assert.equal(warning?.route, 'made')
  assert.equal(warning?.level, 40)
  assert.ok(!proxy.logs.text().includes(key.split('\n')[1] as string), 'no line of the key in the logs')
})
