import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { startDpopResource } from './fixtures/dpop-resource.js'

/** A DPoP route against a test token endpoint. */
function route (upstream: string, tokenUrl: string): Record<string, unknown> {
  return { upstream, auth: { type: 'client_credentials', tokenUrl, clientId: 'dpop-client', clientSecret: 'dpop-client-secret-4e1f', dpop: { alg: 'ES256' } } }
}

/** A token endpoint issuing DPoP-bound tokens `token-N`. */
const dpopTokens = (_call: unknown, n: number, res: Parameters<typeof sendJson>[0]): void => {
  sendJson(res, 200, { access_token: `token-${n}`, token_type: 'DPoP', expires_in: 3600 })
}

test('an upstream that refuses every proof gets the request twice, and the client its answer: no loop', async (t) => {
  const tokens = await tokenServer(t, dpopTokens)
  const resource = await startDpopResource(t, { jwksUrl: 'http://127.0.0.1:9/unused', issuer: 'unused', refuseAll: true })
  const proxy = await startProxy(t, { routes: { api: route(resource.url, tokens.tokenUrl) } })

  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 401)
  assert.deepEqual(await res.json(), { error: 'invalid_dpop_proof' })
  assert.match(res.headers.get('www-authenticate') ?? '', /^DPoP error="invalid_dpop_proof"/)
  // The first refusal dropped the token (retryOn 401) and the request went once more, no more.
  assert.deepEqual(resource.checks.map((c) => c.outcome), ['refusing every proof', 'refusing every proof'])
  assert.equal(tokens.calls.length, 2)
})

test('an upstream that demands a new nonce every time gets the request twice, and the token is kept', async (t) => {
  const tokens = await tokenServer(t, dpopTokens)
  const upstream = await recordingUpstream(t, (_req, res) => {
    sendJson(res, 401, { error: 'use_dpop_nonce' }, { 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', 'dpop-nonce': `nonce-${upstream.requests.length}` })
  })
  const proxy = await startProxy(t, { routes: { api: route(upstream.url, tokens.tokenUrl) } })

  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 401)
  assert.equal(res.headers.get('dpop-nonce'), 'nonce-2')
  await res.arrayBuffer()
  assert.equal(upstream.requests.length, 2)
  const nonces = upstream.requests.map((r) => decodeJwt(String(r.headers.dpop)).nonce)
  assert.deepEqual(nonces, [undefined, 'nonce-1'])
  // A nonce challenge is no refusal of the token: it is not dropped.
  assert.equal(tokens.calls.length, 1)
  assert.deepEqual(upstream.requests.map((r) => r.headers.authorization), ['DPoP token-1', 'DPoP token-1'])

  // The newest nonce is kept for the next request.
  const next = await fetch(`${proxy.url}/api/things`)
  await next.arrayBuffer()
  assert.equal(decodeJwt(String(upstream.requests[2]?.headers.dpop)).nonce, 'nonce-2')
})

test('a 401 without the nonce challenge is a refused token, not a nonce demand, even with a DPoP-Nonce header', async (t) => {
  const tokens = await tokenServer(t, dpopTokens)
  const upstream = await recordingUpstream(t, (req, res) => {
    if (req.headers.authorization === 'DPoP token-1') return sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'DPoP error="invalid_token"', 'dpop-nonce': 'n-1' })
    sendJson(res, 200, { ok: true })
  })
  const proxy = await startProxy(t, { routes: { api: route(upstream.url, tokens.tokenUrl) } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.equal(tokens.calls.length, 2)
  // The nonce that came with the refusal is used in the replay's proof.
  assert.equal(decodeJwt(String(upstream.requests[1]?.headers.dpop)).nonce, 'n-1')
})

test('a token answer that is not token_type DPoP is refused: 502 TOKEN_REJECTED, nothing sent upstream', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: route(upstream.url, tokens.tokenUrl) } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 502)
  const body = await res.json() as { error: { code: string, message: string } }
  assert.equal(body.error.code, 'TOKEN_REJECTED')
  assert.match(body.error.message, /token_type Bearer, not DPoP/)
  assert.ok(!body.error.message.includes('token-1'))
  assert.equal(upstream.requests.length, 0)
  // The grant carried a proof for the token endpoint all the same.
  const proof = String(tokens.calls[0]?.headers.dpop)
  assert.equal(decodeProtectedHeader(proof).typ, 'dpop+jwt')
  assert.deepEqual({ htm: decodeJwt(proof).htm, htu: decodeJwt(proof).htu, ath: decodeJwt(proof).ath }, { htm: 'POST', htu: tokens.tokenUrl, ath: undefined })
})

test('a token endpoint that demands a nonce every time is asked twice, then the client gets TOKEN_REJECTED', async (t) => {
  const tokens = await tokenServer(t, (_call, n, res) => {
    sendJson(res, 400, { error: 'use_dpop_nonce', error_description: 'Authorization server requires nonce in DPoP proof' }, { 'dpop-nonce': `as-nonce-${n}` })
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: route(upstream.url, tokens.tokenUrl) } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 502)
  assert.equal((await res.json() as { error: { code: string } }).error.code, 'TOKEN_REJECTED')
  assert.equal(tokens.calls.length, 2)
  assert.deepEqual(tokens.calls.map((c) => decodeJwt(String(c.headers.dpop)).nonce), [undefined, 'as-nonce-1'])
  assert.equal(new Set(tokens.calls.map((c) => decodeJwt(String(c.headers.dpop)).jti)).size, 2)
})

test('use_dpop_nonce without a DPoP-Nonce header is not retried', async (t) => {
  const tokens = await tokenServer(t, (_call, _n, res) => { sendJson(res, 400, { error: 'use_dpop_nonce' }) })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: route(upstream.url, tokens.tokenUrl) } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 502)
  await res.arrayBuffer()
  assert.equal(tokens.calls.length, 1)
})
