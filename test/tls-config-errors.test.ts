import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import { parseIssues } from './config-helpers.js'
import { testPki } from './tls-certificates.js'

// `tls` (route and auth block): PEM text that cannot be read is a config
// error naming its key, and the message never carries the text.

const pki = testPki()
const TOKEN_URL = 'https://idp.example/token'
const GARBAGE = 'not-a-pem-but-a-secret-value-0a9f'

function issues (route: Record<string, unknown>): string[] {
  return parseIssues({ routes: { r: { upstream: 'https://api.example', ...route } } })
}

const cc = (auth: Record<string, unknown> = {}) => ({ type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientSecret: 's-123456', ...auth })

test('unreadable or mismatched PEM is a config error naming the key, never the text', () => {
  const rows: Array<[Record<string, unknown>, string]> = [
    [{ auth: cc({ tls: { cert: GARBAGE, key: pki.client.key } }) }, 'routes.r.auth.tls.cert: is not readable as PEM certificates (-----BEGIN CERTIFICATE-----)'],
    [{ auth: cc({ tls: { cert: pki.client.cert, key: GARBAGE } }) }, 'routes.r.auth.tls.key: is not readable as an unencrypted PEM private key'],
    [{ auth: cc({ tls: { ca: `-----BEGIN CERTIFICATE-----\n${GARBAGE}\n-----END CERTIFICATE-----` } }) }, 'routes.r.auth.tls.ca: is not readable as PEM certificates (-----BEGIN CERTIFICATE-----)'],
    [{ auth: cc({ tls: { cert: pki.client.cert, key: pki.otherClient.key } }) }, 'routes.r.auth.tls.key: is not the private key of cert (the first certificate in it)'],
    [{ auth: cc({ tls: { cert: pki.client.cert } }) }, 'routes.r.auth.tls.key: is required with cert'],
    [{ tls: { key: pki.client.key }, auth: cc() }, 'routes.r.tls.cert: is required with key'],
    [{ tls: { cert: GARBAGE, key: pki.client.key }, auth: cc() }, 'routes.r.tls.cert: is not readable as PEM certificates (-----BEGIN CERTIFICATE-----)']
  ]
  for (const [route, expected] of rows) {
    const found = issues(route)
    assert.ok(found.includes(expected), `${expected} not in: ${found.join(' | ')}`)
    const text = found.join('\n')
    assert.ok(!text.includes(GARBAGE) && !text.includes('PRIVATE KEY') && !text.includes(pki.client.key.split('\n')[1] ?? '-'), 'no PEM text in the message')
  }
})

test('the route\'s tls is the auth block\'s default, and exposed on the route; the auth block\'s own wins', () => {
  const routeTls = { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert }
  const own = { cert: pki.selfSigned.cert, key: pki.selfSigned.key }
  const config = parseConfig({
    routes: {
      inherits: { upstream: 'https://a.example', tls: routeTls, auth: cc() },
      own: { upstream: 'https://b.example', tls: routeTls, auth: cc({ tls: own }) },
      keyed: { upstream: 'https://c.example', tls: routeTls, auth: { type: 'static', token: 'k-123456' } }
    }
  }, { env: {} })
  const [inherits, ownRoute, keyed] = config.routes
  assert.deepEqual(inherits?.tls, routeTls)
  assert.deepEqual((inherits?.auth as { tls?: unknown }).tls, routeTls)
  assert.deepEqual((ownRoute?.auth as { tls?: unknown }).tls, own)
  assert.deepEqual(keyed?.tls, routeTls)
  assert.equal('tls' in (keyed?.auth ?? {}), false, 'a static key has no token endpoint')
  // tls_client_auth is satisfied by the route's certificate.
  assert.doesNotThrow(() => parseConfig({ routes: { r: { upstream: 'https://a.example', tls: routeTls, auth: { type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientAuth: 'tls_client_auth' } } } }, { env: {} }))
})
