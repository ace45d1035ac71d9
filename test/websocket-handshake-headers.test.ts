import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientCredentialsRoute, startProxy, tokenServer } from './helpers.js'
import { socketExchange } from './security-helpers.js'
import { openWebsocket, websocketUpstream, wsBase } from './websocket-helpers.js'

test('the client\'s Cookie reaches a websocket upstream only on a route with forwardCookies: true', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      plain: clientCredentialsRoute(upstream.url, tokens.tokenUrl),
      cookies: clientCredentialsRoute(upstream.url, tokens.tokenUrl, { forwardCookies: true })
    }
  })

  for (const route of ['plain', 'cookies']) {
    const res = await openWebsocket(`${wsBase(proxy.url)}/${route}/live`, { headers: { cookie: 'session=local-app-session' } })
    assert.equal(res.status, undefined, route)
    res.ws.terminate()
  }
  assert.deepEqual(upstream.handshakes.map((h) => h.headers.cookie), [undefined, 'session=local-app-session'])
})

test('a websocket handshake carries none of the client\'s credentials or hop-by-hop headers, and the upstream\'s subprotocol choice comes back', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, {
    server: { handleProtocols: (offered) => offered.has('superchat') ? 'superchat' : false }
  })
  const proxy = await startProxy(t, { security: { clientKey: 'proxy-key-5c1e' }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const answer = await socketExchange(proxy.url, [
    'GET /api/live?since=1 HTTP/1.1',
    `Host: 127.0.0.1:${new URL(proxy.url).port}`,
    'Connection: Upgrade, x-hop',
    'Upgrade: websocket',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Protocol: chat, superchat',
    'Authorization: Bearer client-own-token',
    'Proxy-Authorization: Basic Y2xpZW50OnNlY3JldA==',
    'x-proxy-key: proxy-key-5c1e',
    'x-hop: named-by-connection',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'x-request-id: kept-1',
    '', ''
  ].join('\r\n'), 1500)
  assert.equal(answer.status, 101)
  assert.equal(answer.headers['sec-websocket-protocol'], 'superchat')

  assert.equal(upstream.handshakes.length, 1)
  const headers = upstream.handshakes[0]?.headers ?? {}
  assert.equal(headers.authorization, 'Bearer token-1', 'the route\'s credential, not the client\'s')
  assert.equal(headers['sec-websocket-protocol'], 'chat,superchat', 'the client\'s offer')
  assert.equal(headers['x-request-id'], 'kept-1')
  assert.equal(headers.host, new URL(upstream.url).host)
  for (const name of ['proxy-authorization', 'x-proxy-key', 'x-hop', 'keep-alive', 'te']) assert.equal(headers[name], undefined, name)
  const all = JSON.stringify(headers)
  assert.ok(!all.includes('client-own-token') && !all.includes('proxy-key-5c1e'), 'no client credential reached the upstream')
})
