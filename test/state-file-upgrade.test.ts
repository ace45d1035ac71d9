import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CompactEncrypt } from 'jose'
import { parseConfig } from '../src/config/load.js'
import { tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { tokenFile } from './state-files.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const HOUR = 3600_000
const STATE_KEY = 'an old state key, a passphrase'

function input (dir: string, tokenUrl: string, upstream: string, stateKey?: string) {
  return {
    stateDir: dir,
    ...(stateKey === undefined ? {} : { stateKey }),
    routes: { api: { upstream, auth: { type: 'refresh_token', tokenUrl, clientId: 'c', clientSecret: 'client-secret-value', refreshToken: 'rt-seed' } } }
  }
}

/** A token file as the first format wrote it: an unsalted SHA-256 of the auth block, key = SHA-256 of stateKey. */
async function legacyFile (file: string, auth: unknown, now: number, stateKey?: string): Promise<void> {
  const json = JSON.stringify({
    format: 1,
    route: 'api',
    fingerprint: createHash('sha256').update(JSON.stringify(auth)).digest('hex'),
    token: { accessToken: 'legacy-access', obtainedAt: now, expiresAt: now + HOUR, refreshToken: 'rt-rotated-before-upgrade' }
  })
  const text = stateKey === undefined
    ? json
    : await new CompactEncrypt(new TextEncoder().encode(json)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(createHash('sha256').update(stateKey).digest())
  writeFileSync(file, text, { mode: 0o600 })
}

for (const stateKey of [undefined, STATE_KEY]) {
  test(`a token file of the first format${stateKey === undefined ? '' : ' (encrypted)'} is still used, and rewritten without the unsalted hash at the next renewal`, async (t) => {
    const clock = new ManualClock()
    const tokens = await tokenServer(t, (c, n, res) => {
      if (c.form.get('refresh_token') !== 'rt-rotated-before-upgrade') return sendJson(res, 400, { error: 'invalid_grant' })
      sendJson(res, 200, { access_token: `access-${n}`, token_type: 'Bearer', expires_in: 3600, refresh_token: `rt-${n}` })
    })
    const upstream = await recordingUpstream(t)
    const dir = tempDir(t)
    const config = input(dir, tokens.tokenUrl, upstream.url, stateKey)
    const auth = parseConfig(config).routes[0]?.auth
    const file = join(dir, 'api.token.json')
    await legacyFile(file, auth, clock.now(), stateKey)

    const proxy = await startProxy(t, config, { now: clock.now })
    assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
    assert.equal(tokens.calls.length, 0, 'the stored token was used')
    clock.advance(2 * HOUR)
    assert.equal((await call(`${proxy.url}/api/b`)).status, 200)
    // The refresh token rotated before the upgrade was not lost.
    assert.deepEqual(tokens.calls.map((c) => c.form.get('refresh_token')), ['rt-rotated-before-upgrade'])
    assert.deepEqual(upstream.requests.map(tokenOf), ['legacy-access', 'access-1'])
    assert.deepEqual(proxy.logs.lines.filter((l) => l.event === 'token_file_ignored'), [])

    // Rewritten under the name that carries the keyed settings hash; the old name is gone.
    assert.ok(!existsSync(file), 'the file of the first format was removed once replaced')
    const text = readFileSync(tokenFile(dir, 'api'), 'utf8')
    assert.ok(!text.includes(createHash('sha256').update(JSON.stringify(auth)).digest('hex')))
    if (stateKey === undefined) {
      const stored = JSON.parse(text) as { format: number, fingerprint?: string, hash: string }
      assert.equal(stored.format, 2)
      assert.equal(stored.fingerprint, undefined)
    }
  })
}

test('a token file of the first format for other credentials is ignored with a warning', async (t) => {
  const tokens = await tokenServer(t, (_c, n, res) => sendJson(res, 200, { access_token: `access-${n}`, expires_in: 3600, refresh_token: `rt-${n}` }))
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const config = input(dir, tokens.tokenUrl, upstream.url)
  await legacyFile(join(dir, 'api.token.json'), { type: 'refresh_token', refreshToken: 'another' }, Date.now())
  const proxy = await startProxy(t, config)
  assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
  assert.deepEqual(upstream.requests.map(tokenOf), ['access-1'])
  const warnings = proxy.logs.lines.filter((l) => l.event === 'token_file_ignored')
  assert.equal(warnings.length, 1)
  assert.match(String(warnings[0]?.reason), /another auth config/)
})
