import assert from 'node:assert/strict'
import { rootCertificates } from 'node:tls'
import { test } from 'node:test'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { testPki } from './tls-certificates.js'

// A secret of several thousand characters (a key file that holds its certificate chain too, as
// HAProxy and many tools write them) is still removed from every message. Searched for as one
// pattern, such a value overflows V8's regular expression compiler, whose error quotes the pattern,
// and so spells the key out, one `(?:C|%43|...)` group per character, in the client's error body
// and the logs.

const pki = testPki()

/** The text with each `(?:C|%43|...)` group of a redaction pattern read back as its character. */
function unspelled (text: string): string {
  return text.replace(/\(\?:\\*([^|]{1,2})\|[^)]*\)/g, '$1')
}

test('a key file holding its certificate chain is never spelled out in an error body or a log line', async (t) => {
  const upstream = await recordingUpstream(t)
  const idp = await tokenServer(t, (_call, _n, res) => sendJson(res, 401, { error: 'invalid_client', error_description: 'unknown client' }))
  const combined = [pki.client.key, pki.client.cert, ...rootCertificates.slice(0, 4)].join('\n')
  assert.ok(combined.length > 8000, `a long file (${combined.length} characters)`)
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, tls: { cert: combined, key: combined }, auth: { type: 'client_credentials', tokenUrl: idp.tokenUrl, clientId: 'c', clientSecret: 'client-secret-value' } } }
  })
  const res = await fetch(`${proxy.url}/api/x`)
  const body = await res.text()
  const logs = proxy.logs.text()
  const keyLines = pki.client.key.split('\n').filter((line) => line !== '' && !line.startsWith('-----'))
  for (const line of keyLines) {
    assert.ok(!unspelled(body).includes(line), 'the key is not in the error body')
    assert.ok(!unspelled(logs).includes(line), 'the key is not in a log line')
  }
  assert.equal(res.status, 502, body.slice(0, 300))
  assert.deepEqual(JSON.parse(body).error.code, 'TOKEN_REJECTED')
  assert.match(body, /invalid_client: unknown client/)
})
