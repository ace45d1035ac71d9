import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { after, before, test, type TestContext } from 'node:test'
import { decodeJwt } from 'jose'
import WebSocket, { WebSocketServer } from 'ws'
import { startProxy } from './helpers.js'
import { startMtlsProvider, type MtlsFixture } from './fixtures/oidc-mtls-provider.js'
import { certificateThumbprint, testPki } from './tls-certificates.js'

// A route's `tls` on the upstream side: the client certificate is presented to
// the upstream (plain requests and websocket handshakes), `ca` adds trust, and
// a certificate-bound token (RFC 8705 §3, `cnf.x5t#S256`) reaches the upstream
// over the certificate it is bound to.

const pki = testPki()
let idp: MtlsFixture
before(async () => {
  idp = await startMtlsProvider({ server: pki.server, clientCa: pki.ca.cert, selfSignedCert: pki.selfSigned.cert, subjectDn: 'CN=bearer-proxy-client' })
})
after(() => idp.close())

interface SeenRequest { url: string, peer: string | undefined, thumbprint: string | undefined, authorization: string | undefined }

/**
 * An https API that demands a client certificate from the test CA, records who
 * presented which certificate, and when `bound` is set answers 401 to a token
 * whose `cnf.x5t#S256` is not the presented certificate's.
 */
async function mtlsUpstream (t: TestContext, options: { bound?: boolean, server?: { cert: string, key: string } } = {}): Promise<{ url: string, seen: SeenRequest[], handshakes: () => number, server: Server }> {
  const seen: SeenRequest[] = []
  let handshakes = 0
  const server = createServer({ ...(options.server ?? pki.server), ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    const thumbprint = peer.raw === undefined ? undefined : certificateThumbprint(`-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64')}\n-----END CERTIFICATE-----`)
    seen.push({ url: req.url ?? '', peer: String(peer.subject?.CN), thumbprint, authorization: req.headers.authorization })
    if (options.bound === true) {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
      const cnf = decodeJwt(token).cnf as Record<string, unknown> | undefined
      if (cnf?.['x5t#S256'] !== thumbprint) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}')
        return
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  server.on('secureConnection', () => { handshakes++ })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => ws.send(`hello ${String((req.socket as TLSSocket).getPeerCertificate().subject?.CN)}`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => {
    // Upgraded sockets are the websocket server's, not the https server's: ended here.
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, handshakes: () => handshakes, server }
}

const STATIC = { type: 'static', token: 'an-api-key-for-the-upstream' }

test('the route\'s client certificate is presented to the upstream, and its ca trusts the upstream\'s', async (t) => {
  const upstream = await mtlsUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert }, auth: STATIC } } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(upstream.seen.map((s) => [s.url, s.peer, s.authorization]), [['/things', 'bearer-proxy-client', 'Bearer an-api-key-for-the-upstream']])
})

test('without a client certificate the upstream refuses the handshake: 502 UPSTREAM_UNAVAILABLE, no credential sent', async (t) => {
  const upstream = await mtlsUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, tls: { ca: pki.ca.cert }, auth: STATIC } } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 502)
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UPSTREAM_UNAVAILABLE')
  assert.equal(upstream.seen.length, 0, 'no request reached the upstream')
})

test('an upstream certificate no configured or system CA vouches for is refused before any request: 502, no credential sent', async (t) => {
  // The upstream's certificate is from another CA; the route trusts only the test CA (and the system's).
  const upstream = await mtlsUpstream(t, { server: pki.otherServer })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert }, auth: STATIC } } })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 502)
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UPSTREAM_UNAVAILABLE')
  assert.equal(upstream.seen.length, 0)
})

test('a websocket handshake presents the route\'s client certificate too', async (t) => {
  const upstream = await mtlsUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert }, auth: STATIC } } })
  const ws = new WebSocket(`${proxy.url.replace(/^http/, 'ws')}/api/socket`)
  t.after(() => ws.terminate())
  const [message] = await Promise.race([
    once(ws, 'message'),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('no websocket message within 10 s')), 10_000).unref())
  ]) as [Buffer]
  assert.equal(message.toString(), 'hello bearer-proxy-client')
})

test('a certificate-bound token (tls_client_auth) reaches the upstream over the certificate it is bound to', async (t) => {
  const upstream = await mtlsUpstream(t, { bound: true })
  const proxy = await startProxy(t, {
    routes: {
      api: {
        upstream: upstream.url,
        // One certificate for both sides: the token endpoint's client authentication and the upstream's.
        tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert },
        auth: { type: 'client_credentials', tokenUrl: idp.tokenUrl, clientId: idp.clients.tls.clientId, clientAuth: 'tls_client_auth' }
      }
    }
  })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 200, await res.clone().text())
  const [seen] = upstream.seen
  assert.equal(seen?.peer, 'bearer-proxy-client')
  const token = (seen?.authorization ?? '').replace(/^Bearer /, '')
  assert.equal((decodeJwt(token).cnf as Record<string, unknown>)['x5t#S256'], certificateThumbprint(pki.client.cert), 'the token is bound to the route\'s certificate')
  assert.ok(!proxy.logs.text().includes(token), 'the token is never logged')
})

test('with the certificate only in auth.tls, a token bound to it still reaches the upstream over it', async (t) => {
  const upstream = await mtlsUpstream(t, { bound: true })
  const proxy = await startProxy(t, {
    routes: {
      api: {
        upstream: upstream.url,
        auth: { type: 'client_credentials', tokenUrl: idp.tokenUrl, clientId: idp.clients.tls.clientId, clientAuth: 'tls_client_auth', tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert } }
      }
    }
  })
  const res = await fetch(`${proxy.url}/api/things`)
  assert.equal(res.status, 200, await res.clone().text())
  assert.equal(upstream.seen[0]?.peer, 'bearer-proxy-client')
})
