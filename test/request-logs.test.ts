import { test } from 'node:test'
import assert from 'node:assert/strict'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'

type Line = Record<string, unknown>

function requestLines (lines: Line[]): Line[] {
  return lines.filter((l) => l.msg === 'request')
}

test('one JSON line per request: route, method, path without query, status, ms', async (t) => {
  const upstream = await recordingUpstream(t, (req, res) => sendJson(res, req.method === 'POST' ? 201 : 200, { ok: true }))
  const endpoint = await tokenServer(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: endpoint.tokenUrl, clientId: 'c', clientSecret: 'client-secret-1' } } } })

  const queryValue = 'QUERY-VALUE-CANARY-8c2d'
  const calls: Array<[string, RequestInit]> = [
    [`/api/items?api_key=${queryValue}&page=2`, {}],
    ['/api/things', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }],
    [`/nowhere?sig=${queryValue}`, {}]
  ]
  const statuses: number[] = []
  for (const [path, init] of calls) {
    const res = await fetch(`${proxy.url}${path}`, init)
    statuses.push(res.status)
    await res.arrayBuffer()
  }
  assert.deepEqual(statuses, [200, 201, 404])
  // The request line is written when the response finishes: wait for it, bounded.
  for (let i = 0; i < 200 && requestLines(proxy.logs.lines).length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10))

  const lines = requestLines(proxy.logs.lines)
  assert.equal(lines.length, 3, proxy.logs.text())
  const picked = lines.map((l) => ({ route: l.route, method: l.method, path: l.path, status: l.status }))
  assert.deepEqual(picked, [
    { route: 'api', method: 'GET', path: '/api/items', status: 200 },
    { route: 'api', method: 'POST', path: '/api/things', status: 201 },
    { route: undefined, method: 'GET', path: '/nowhere', status: 404 }
  ])
  for (const line of lines) {
    assert.equal(typeof line.ms, 'number')
    assert.ok((line.ms as number) >= 0)
    assert.equal(typeof line.level, 'number')
    assert.equal(typeof line.time, 'number')
  }
  // The upstream got the query; the logs have none of its values.
  assert.equal(upstream.requests[0]?.url, `/items?api_key=${queryValue}&page=2`)
  assert.ok(!proxy.logs.text().includes(queryValue), 'a query value was logged')
  assert.ok(!proxy.logs.text().includes('api_key='))
})

test('token events: obtained and refreshed with expiresIn, failed with a reason', async (t) => {
  const upstream = await recordingUpstream(t)
  const good = await tokenServer(t, (_call, n, res) => {
    sendJson(res, 200, { access_token: `access-${n}`, token_type: 'Bearer', expires_in: 600, refresh_token: `refresh-${n}` })
  })
  const bad = await tokenServer(t, (_call, _n, res) => sendJson(res, 401, { error: 'invalid_client', error_description: 'unknown client' }))
  let clock = Date.now()
  const proxy = await startProxy(t, {
    routes: {
      good: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: good.tokenUrl, clientId: 'c', clientSecret: 'good-secret-value' } },
      bad: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: bad.tokenUrl, clientId: 'c', clientSecret: 'bad-secret-value' } }
    }
  }, { now: () => clock })

  const first = await fetch(`${proxy.url}/good/a`)
  assert.equal(first.status, 200)
  await first.arrayBuffer()
  clock += 700_000 // past expiry: the next request renews with the refresh token
  const second = await fetch(`${proxy.url}/good/b`)
  assert.equal(second.status, 200)
  await second.arrayBuffer()
  const failed = await fetch(`${proxy.url}/bad/c`)
  assert.equal(failed.status, 502)
  await failed.arrayBuffer()
  assert.deepEqual(good.calls.map((c) => c.form.get('grant_type')), ['client_credentials', 'refresh_token'])

  const events = proxy.logs.lines.filter((l) => typeof l.event === 'string' && String(l.event).startsWith('token_'))
  const obtained = events.filter((l) => l.event === 'token_obtained')
  assert.equal(obtained.length, 1)
  assert.equal(obtained[0]?.route, 'good')
  assert.equal(obtained[0]?.expiresIn, 600)
  const refreshed = events.filter((l) => l.event === 'token_refreshed')
  assert.equal(refreshed.length, 1)
  assert.equal(refreshed[0]?.route, 'good')
  assert.equal(refreshed[0]?.expiresIn, 600)
  const failures = events.filter((l) => l.event === 'token_failed')
  assert.equal(failures.length, 1)
  assert.equal(failures[0]?.route, 'bad')
  assert.equal(typeof failures[0]?.reason, 'string')
  assert.match(failures[0]?.reason as string, /invalid_client/)
  assert.ok(Number.isInteger(failures[0]?.retryInMs), `retryInMs in whole milliseconds (got ${String(failures[0]?.retryInMs)})`)
  // The events carry no token values.
  for (const value of ['access-1', 'access-2', 'refresh-1', 'refresh-2']) assert.ok(!proxy.logs.text().includes(value), value)
})
