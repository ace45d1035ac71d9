import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { FileTokenStore } from '../src/auth/file-token-store.js'
import { parseConfig } from '../src/config/load.js'
import { tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { tokenFiles } from './state-files.js'
import { call, tokenOf, waitFor } from './token-lifecycle-helpers.js'

/** An upstream that refuses token-1 (revoked at the provider) and takes any other. */
function refusingToken1 (t: Parameters<typeof recordingUpstream>[0]) {
  return recordingUpstream(t, (req, res) => {
    if (req.headers.authorization === 'Bearer token-1') return sendJson(res, 401, { error: 'revoked' })
    sendJson(res, 200, { ok: true })
  })
}

test('a token the upstream refused is dropped from the store too, so no other process or restart serves it', async (t) => {
  // Once token-1 is out the endpoint goes down: the refusal cannot be followed by a renewal.
  let down = true
  const tokens = await tokenServer(t, (_c, n, res) => {
    if (n > 1 && down) return sendJson(res, 503, { error: 'temporarily_unavailable' })
    sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 })
  })
  const upstream = await refusingToken1(t)
  const dir = tempDir(t)
  const config = { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const first = await startProxy(t, config)
  const res = await call(`${first.url}/api/a`)
  assert.notEqual(res.status, 200)
  assert.equal(tokenOf(upstream.requests[0]), 'token-1')
  await waitFor(() => tokenFiles(dir, 'api').length === 0 && !existsSync(join(dir, 'api.token.json')), 'the refused token to leave the store', 5000)
  await first.close()

  down = false
  const second = await startProxy(t, config)
  assert.equal((await call(`${second.url}/api/b`)).status, 200)
  assert.equal(tokenOf(upstream.requests.at(-1)), `token-${tokens.calls.length}`, 'the restart did not serve the refused token')
})

test('a refused token is dropped from the store only if it is still the stored one: a newer token another process stored is kept, and used', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await refusingToken1(t)
  const dir = tempDir(t)
  const config = { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const proxy = await startProxy(t, config)
  // The proxy takes token-1 from the endpoint without using it yet.
  await proxy.brokers.get('api')?.token()
  assert.equal(tokens.calls.length, 1)

  // Meanwhile another process renewed: token-other, newer, in the store.
  const settings = new Map(parseConfig(config).routes.map((r) => [r.name, r.auth]))
  const other = new FileTokenStore({ dir, settings, logger: pino({ level: 'silent' }) })
  const now = Date.now()
  await other.save('api', { accessToken: 'token-other', obtainedAt: now + 1, expiresAt: now + 3600_000 })

  const res = await call(`${proxy.url}/api/a`)
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-other'], 'refused, then replayed with the stored newer token')
  assert.equal(tokens.calls.length, 1, 'no token request: the other process\'s token was taken')
  // Let the drop run its course; it must leave the newer token in place.
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal((await other.load('api'))?.accessToken, 'token-other')
})
