/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseConfig } from '../src/config/load.js'
import { tempDir } from './cli-helpers.js'
import { recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { tokenFile } from './state-files.js'
import { call, tokenOf } from './token-lifecycle-helpers.js'

const PASSWORD = 'hunter2'

function input (dir: string, tokenUrl: string, upstream: string) {
  return {
    stateDir: dir,
    routes: { api: { upstream, auth: { type: 'password', tokenUrl, clientId: 'pw-client', clientSecret: 'pw-client-secret', username: 'alice', password: '${env:API_PASSWORD}' } } }
  }
}

/** Every way the old format's unsalted SHA-256 of the auth block could be written down. */
function unsaltedDigests (auth: unknown): string[] {
  const digest = createHash('sha256').update(JSON.stringify(auth)).digest()
  return [digest.toString('hex'), digest.toString('base64'), digest.toString('base64url')]
}

test('the state file carries no unsalted SHA-256 of the auth block, only a hash keyed per state dir', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const env = { API_PASSWORD: PASSWORD }
  const files: string[] = []
  for (const dir of [tempDir(t), tempDir(t)]) {
    const proxy = await startProxy(t, input(dir, tokens.tokenUrl, upstream.url), { env })
    assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
    await proxy.close()
    files.push(readFileSync(tokenFile(dir, 'api'), 'utf8'))
  }
  // The auth block exactly as the proxy resolved it (defaults filled in, ${env:} replaced).
  const auth = parseConfig(input('/x', tokens.tokenUrl, upstream.url), { env }).routes[0]?.auth
  assert.equal((auth as { password: string }).password, PASSWORD)
  const hashes = files.map((text) => {
    for (const digest of unsaltedDigests(auth)) assert.ok(!text.includes(digest), 'an unsalted SHA-256 of the auth block is in the file')
    assert.ok(!text.includes(PASSWORD))
    const stored = JSON.parse(text) as { hash: string, fingerprint?: unknown }
    assert.equal(stored.fingerprint, undefined)
    assert.match(stored.hash, /^[0-9a-f]{64}$/)
    return stored.hash
  })
  assert.notEqual(hashes[0], hashes[1], 'each state dir keys its own hash: the same credentials give another hash elsewhere')
})

test('a token stored for another password (same config text, another ${env:} value) is not used', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const first = await startProxy(t, input(dir, tokens.tokenUrl, upstream.url), { env: { API_PASSWORD: PASSWORD } })
  assert.equal((await call(`${first.url}/api/a`)).status, 200)
  await first.close()

  const second = await startProxy(t, input(dir, tokens.tokenUrl, upstream.url), { env: { API_PASSWORD: 'another-password' } })
  assert.equal((await call(`${second.url}/api/b`)).status, 200)
  assert.equal(tokens.calls.length, 2, 'the other password got its own token')
  assert.equal(tokens.calls[1]?.form.get('password'), 'another-password')
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'])
  const warnings = second.logs.lines.filter((l) => l.event === 'token_file_ignored')
  assert.equal(warnings.length, 1, JSON.stringify(warnings))
  assert.match(String(warnings[0]?.reason), /another auth config/)

  // The same password again: the stored token (now the second one) is used, no request.
  await second.close()
  const third = await startProxy(t, input(dir, tokens.tokenUrl, upstream.url), { env: { API_PASSWORD: 'another-password' } })
  assert.equal((await call(`${third.url}/api/c`)).status, 200)
  assert.equal(tokens.calls.length, 2)
  assert.equal(tokenOf(upstream.requests[2]), 'token-2')
})
