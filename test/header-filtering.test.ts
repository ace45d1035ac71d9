import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { test } from 'node:test'
import { cleanResponseHeaders, upstreamRequestHeaders } from '../src/proxy/headers.js'

const CREDENTIAL: ReadonlyArray<readonly [string, string]> = [['authorization', 'Bearer route-token']]

test('request headers: the client\'s credentials, hop-by-hop and forwarding headers never reach the upstream; the route\'s credential and Host are set last', () => {
  const cases: Array<[string, IncomingHttpHeaders, boolean, IncomingHttpHeaders]> = [
    ['plain headers pass', { accept: 'application/json', 'x-trace': 'abc' }, false,
      { accept: 'application/json', 'x-trace': 'abc', host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['the client\'s own credentials are replaced', { authorization: 'Bearer client-token', 'proxy-authorization': 'Basic eA==', 'x-proxy-key': 'local-key' }, false,
      { host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['hop-by-hop headers and Expect are dropped', { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', te: 'trailers', trailer: 'x', 'transfer-encoding': 'chunked', upgrade: 'h2c', expect: '100-continue' }, false,
      { host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['forwarding headers a client could forge are dropped', { forwarded: 'for=1.2.3.4', 'x-forwarded-for': '1.2.3.4', 'x-forwarded-host': 'evil', 'x-forwarded-proto': 'https', 'x-forwarded-port': '1', 'x-forwarded-prefix': '/x', 'x-real-ip': '1.2.3.4' }, false,
      { host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['headers the Connection header names are dropped', { connection: 'X-Secret, keep-alive', 'x-secret': 'hop', 'x-kept': 'end' }, false,
      { 'x-kept': 'end', host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['the client\'s Host is the upstream\'s', { host: '127.0.0.1:8080' }, false,
      { host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['Cookie is dropped on a route that does not forward cookies', { cookie: 'session=notebook' }, false,
      { host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['Cookie passes on a route that forwards cookies', { cookie: 'session=notebook' }, true,
      { cookie: 'session=notebook', host: 'api.example:8443', authorization: 'Bearer route-token' }],
    ['Connection naming the credential header cannot remove it', { connection: 'authorization' }, false,
      { host: 'api.example:8443', authorization: 'Bearer route-token' }]
  ]
  for (const [what, client, forwardCookies, expected] of cases) {
    assert.deepEqual(upstreamRequestHeaders(client, 'api.example:8443', CREDENTIAL, forwardCookies), expected, what)
  }
})

test('request headers: every credential header is set, over any header of the same name the client sent', () => {
  const credential: ReadonlyArray<readonly [string, string]> = [['authorization', 'DPoP route-token'], ['dpop', 'proof.jwt']]
  assert.deepEqual(upstreamRequestHeaders({ dpop: 'client-proof', accept: '*/*' }, 'api.example', credential, false),
    { accept: '*/*', dpop: 'proof.jwt', host: 'api.example', authorization: 'DPoP route-token' })
})

test('response headers: hop-by-hop headers and those the Connection header names are dropped, the rest passes as it came', () => {
  const cases: Array<[string, IncomingHttpHeaders, IncomingHttpHeaders]> = [
    ['end-to-end headers pass', { 'content-type': 'text/plain', vary: 'Origin, Accept', 'set-cookie': ['a=1', 'b=2'] },
      { 'content-type': 'text/plain', vary: 'Origin, Accept', 'set-cookie': ['a=1', 'b=2'] }],
    ['hop-by-hop headers are dropped', { connection: 'close', 'keep-alive': 'timeout=5', 'proxy-connection': 'close', 'proxy-authenticate': 'Basic', te: 'x', trailer: 'x', upgrade: 'h2c', 'transfer-encoding': 'chunked', etag: '"1"' },
      { etag: '"1"' }],
    ['headers one Connection line names are dropped', { connection: 'x-hop', 'x-hop': '1', 'x-end': '2' }, { 'x-end': '2' }],
    // undici gives several Connection lines as an array.
    ['headers several Connection lines name are dropped', { connection: ['x-one', 'X-Two'] as unknown as string, 'x-one': '1', 'x-two': '2', 'x-end': '3' }, { 'x-end': '3' }],
    ['Connection: keep-alive names no header', { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-end': '3' }, { 'x-end': '3' }]
  ]
  for (const [what, upstream, expected] of cases) {
    assert.deepEqual(cleanResponseHeaders(upstream), expected, what)
  }
})
