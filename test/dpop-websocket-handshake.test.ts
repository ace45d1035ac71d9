import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EmbeddedJWK, jwtVerify } from 'jose'
import { WebSocketServer } from 'ws'
import { sendJson, startProxy, tokenServer } from './helpers.js'
import { portOf } from './security-helpers.js'
import { openWebsocket, wsBase } from './websocket-helpers.js'

test('a websocket handshake carries a DPoP proof for GET and the upstream URL, and a nonce challenge is answered once', async (t) => {
  const tokens = await tokenServer(t, (_call, n, res) => { sendJson(res, 200, { access_token: `ws-token-${n}`, token_type: 'DPoP', expires_in: 3600 }) })
  const proofs: Array<Record<string, unknown>> = []
  let port = 0
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (info, done) => {
      const auth = info.req.headers.authorization ?? ''
      jwtVerify(String(info.req.headers.dpop), EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] }).then(({ payload }) => {
        proofs.push(payload)
        const valid = auth === 'DPoP ws-token-1' && payload.htm === 'GET' && payload.htu === `http://127.0.0.1:${port}/live` &&
          payload.ath === createHash('sha256').update('ws-token-1').digest('base64url')
        if (!valid) return done(false, 401, 'bad proof', { 'www-authenticate': 'DPoP error="invalid_dpop_proof"' })
        if (payload.nonce !== 'ws-nonce') return done(false, 401, 'nonce', { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'ws-nonce' })
        done(true)
      }, () => done(false, 401, 'no proof'))
    }
  })
  await once(server, 'listening')
  port = portOf(server)
  t.after(() => new Promise<void>((resolve) => {
    for (const client of server.clients) client.terminate()
    server.close(() => resolve())
  }))
  const proxy = await startProxy(t, {
    routes: { api: { upstream: `http://127.0.0.1:${port}`, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'c', clientSecret: 'ws-secret-77', dpop: true } } }
  })

  const opened = await openWebsocket(`${wsBase(proxy.url)}/api/live?x=1`)
  assert.equal(opened.status, undefined, opened.body)
  opened.ws.terminate()
  assert.deepEqual(proofs.map((p) => p.nonce), [undefined, 'ws-nonce'])
  assert.notEqual(proofs[0]?.jti, proofs[1]?.jti)
  // The challenge kept the token.
  assert.equal(tokens.calls.length, 1)
})
