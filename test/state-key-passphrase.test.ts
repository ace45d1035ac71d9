import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, hkdfSync, pbkdf2Sync, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { compactDecrypt, decodeProtectedHeader } from 'jose'
import { keyOfStateKey } from '../src/auth/state-keys.js'
import { tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { tokenFile } from './state-files.js'
import { call, tokenOf } from './token-lifecycle-helpers.js'

const PASSPHRASE = 'correct horse battery staple'

/** The encryption key as the SPEC'd derivation gives it, computed here independently. */
function encryptionKey (master: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', master, '', 'bearer-proxy state encryption', 32))
}

/**
 * 32 random bytes whose base64 shows upper case, lower case and digits, as all
 * but about 1 in 1,800 do (those few are taken for a passphrase: they still
 * work, through the derivation).
 */
function randomKey (): Buffer {
  for (let i = 0; i < 100; i++) {
    const key = randomBytes(32)
    const text = key.toString('base64')
    if (/[A-Z]/.test(text) && /[a-z]/.test(text) && /[0-9]/.test(text)) return key
  }
  throw new Error('no random key in 100 tries')
}

async function decrypts (text: string, key: Uint8Array): Promise<boolean> {
  try {
    await compactDecrypt(text.trim(), key)
    return true
  } catch {
    return false
  }
}

test('a passphrase stateKey goes through PBKDF2 (600,000 rounds, salted per state dir): not SHA-256 of the text', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const routes = { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  const first = await startProxy(t, { stateDir: dir, stateKey: PASSPHRASE, routes })
  assert.equal((await call(`${first.url}/api/a`)).status, 200)
  await first.close()

  const text = readFileSync(tokenFile(dir, 'api'), 'utf8')
  assert.deepEqual(decodeProtectedHeader(text.trim()), { alg: 'dir', enc: 'A256GCM' })
  const salt = readFileSync(join(dir, '.key'))
  assert.equal(salt.length, 32)
  assert.equal(statSync(join(dir, '.key')).mode & 0o777, 0o600)
  assert.ok(await decrypts(text, encryptionKey(pbkdf2Sync(PASSPHRASE, salt, 600_000, 32, 'sha256'))), 'the derived key opens the file')
  assert.ok(!await decrypts(text, createHash('sha256').update(PASSPHRASE).digest()), 'a single SHA-256 of the passphrase does not')
  assert.ok(!await decrypts(text, encryptionKey(pbkdf2Sync(PASSPHRASE, salt, 100_000, 32, 'sha256'))), 'fewer rounds do not')

  const second = await startProxy(t, { stateDir: dir, stateKey: PASSPHRASE, routes })
  assert.equal((await call(`${second.url}/api/b`)).status, 200)
  assert.equal(tokens.calls.length, 1, 'the same passphrase restores the token')
  await second.close()

  const third = await startProxy(t, { stateDir: dir, stateKey: 'another passphrase', routes })
  assert.equal((await call(`${third.url}/api/c`)).status, 200)
  assert.equal(tokens.calls.length, 2, 'another passphrase cannot read it')
  assert.match(String(third.logs.lines.find((l) => l.event === 'token_file_ignored')?.reason), /another key/)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-1', 'token-2'])
})

test('a stateKey of 32 random bytes, as base64 or hex, is the key material itself: no derivation, no .key file', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const routes = { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  const key = randomKey()
  const first = await startProxy(t, { stateDir: dir, stateKey: key.toString('base64'), routes })
  assert.equal((await call(`${first.url}/api/a`)).status, 200)
  await first.close()

  const text = readFileSync(tokenFile(dir, 'api'), 'utf8')
  assert.ok(await decrypts(text, encryptionKey(key)))
  assert.ok(!existsSync(join(dir, '.key')), 'a key needs no salt')

  // The same bytes written in hex are the same key.
  const second = await startProxy(t, { stateDir: dir, stateKey: key.toString('hex'), routes })
  assert.equal((await call(`${second.url}/api/b`)).status, 200)
  assert.equal(tokens.calls.length, 1)
  assert.deepEqual(second.logs.lines.filter((l) => l.event === 'token_file_ignored'), [])
})

test('what counts as a key and what as a passphrase', () => {
  const key = randomKey()
  assert.deepEqual(keyOfStateKey(key.toString('base64')), key)
  assert.deepEqual(keyOfStateKey(key.toString('base64url')), key)
  assert.deepEqual(keyOfStateKey(key.toString('hex')), key)
  const longer = randomBytes(48)
  assert.deepEqual(keyOfStateKey(longer.toString('hex')), longer, 'longer keys too')
  for (const passphrase of [
    PASSPHRASE,
    'state-key-one-0123456789',
    randomBytes(31).toString('base64'), // too short for a 256-bit key
    randomBytes(31).toString('hex'),
    'correcthorsebatterystaplecorrecthorsebatterystaple' // base64 alphabet, but plainly words
  ]) assert.equal(keyOfStateKey(passphrase), undefined, passphrase)
})
