import assert from 'node:assert/strict'
import { test } from 'node:test'
import { codeChallenge, codeVerifier, isCodeVerifier, newState, sameState } from '../src/auth/pkce.js'

test('the code verifier is 43+ unreserved characters, fresh every time (RFC 7636 §4.1)', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 50; i++) {
    const verifier = codeVerifier()
    assert.match(verifier, /^[A-Za-z0-9\-._~]{43,128}$/)
    assert.ok(isCodeVerifier(verifier))
    seen.add(verifier)
  }
  assert.equal(seen.size, 50)
})

test('the S256 challenge is BASE64URL(SHA256(verifier)): RFC 7636 Appendix B', () => {
  assert.equal(codeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
})

test('a verifier RFC 7636 does not allow gets no challenge', () => {
  for (const bad of ['short', 'a'.repeat(129), `${'a'.repeat(42)} `, `${'a'.repeat(42)}+`]) {
    assert.throws(() => codeChallenge(bad), TypeError)
  }
})

test('state: fresh and unguessable; compared exactly', () => {
  const state = newState()
  assert.ok(state.length >= 43)
  assert.notEqual(newState(), state)
  assert.ok(sameState(state, state))
  assert.ok(!sameState(`${state}x`, state))
  assert.ok(!sameState(state.slice(1), state))
  assert.ok(!sameState(null, state))
  assert.ok(!sameState('', state))
})
