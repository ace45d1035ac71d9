import assert from 'node:assert/strict'
import { test } from 'node:test'
import { exportPKCS8, generateKeyPair } from 'jose'
import { tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'

/**
 * A DPoP route without a configured key keeps its tokens in memory (no other
 * process could prove possession of them): /routes must say `none` for its
 * store, not the store's health, or an operator reads its tokens as shared.
 */
test('/routes says store "none" for a DPoP route whose key lives only in this process', async (t) => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const key = await exportPKCS8(privateKey)
  const tokens = await tokenServer(t, (_c, n, res) => { sendJson(res, 200, { access_token: `token-${n}`, token_type: 'DPoP', expires_in: 3600 }) })
  const upstream = await recordingUpstream(t)
  const auth = { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'c', clientSecret: 'store-secret-31' }
  const server = await startTestServer(t, {
    stateDir: tempDir(t),
    admin: { host: '127.0.0.1', port: 0 },
    routes: {
      made: { upstream: upstream.url, auth: { ...auth, dpop: true } },
      given: { upstream: upstream.url, auth: { ...auth, dpop: { key } } }
    }
  })
  for (const route of ['made', 'given']) {
    const res = await fetch(`${server.url}/${route}/x`)
    assert.equal(res.status, 200, route)
    await res.arrayBuffer()
  }
  const res = await fetch(`${server.adminUrl as string}/routes`)
  const { routes } = await res.json() as { routes: Array<{ name: string, store: string }> }
  assert.deepEqual(Object.fromEntries(routes.map((r) => [r.name, r.store])), { made: 'none', given: 'ok' })
})
