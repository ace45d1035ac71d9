import assert from 'node:assert/strict'
import { rootCertificates } from 'node:tls'
import { test } from 'node:test'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { testPki } from './tls-certificates.js'

// A CA bundle in a route's `tls` (`ca: ${file:/etc/ssl/certs/ca-certificates.crt}` and a private
// CA) is public text. Searched for in every token error as if it were a secret, each of its base64
// lines is a pattern whose first search takes V8 tens of milliseconds: the first refusal by the
// token endpoint (or the endpoint being down) held the whole process, every route, for a minute or more.

const pki = testPki()

test('with a CA bundle in the route\'s tls, a token endpoint\'s refusal is answered at once: 502 TOKEN_REJECTED with its words', async (t) => {
  const bundle = [...rootCertificates.slice(0, 40), pki.ca.cert].join('\n')
  const upstream = await recordingUpstream(t)
  const idp = await tokenServer(t, (_call, _n, res) => sendJson(res, 401, { error: 'invalid_client', error_description: 'unknown client' }))
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, tls: { ca: bundle }, auth: { type: 'client_credentials', tokenUrl: idp.tokenUrl, clientId: 'c', clientSecret: 'client-secret-value' } } }
  })
  const started = Date.now()
  const res = await fetch(`${proxy.url}/api/x`)
  const body = await res.text()
  const took = Date.now() - started
  assert.equal(res.status, 502, body.slice(0, 300))
  assert.equal(JSON.parse(body).error.code, 'TOKEN_REJECTED')
  assert.match(body, /invalid_client: unknown client/)
  // Without the bundle this takes milliseconds; with it searched line by line, a minute or more.
  assert.ok(took < 15_000, `answered in ${took} ms`)
})
