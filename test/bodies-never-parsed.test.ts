import assert from 'node:assert/strict'
import { test } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const

/** Bodies a parser would refuse: empty or broken JSON, a media type it cannot read, a form with bad escapes. */
const UNPARSABLE: Array<{ contentType: string, body: string }> = [
  { contentType: 'application/json', body: '' },
  { contentType: 'application/json', body: '{"broken":' },
  { contentType: 'application/json; charset=utf-8', body: 'not json at all' },
  { contentType: 'text/plain', body: '' },
  { contentType: 'application/x-www-form-urlencoded', body: 'a=%zz' },
  { contentType: 'nonsense', body: '{}' },
  { contentType: '', body: 'x' }
]

test('a request with a body to an unknown path gets 404 ROUTE_NOT_FOUND, whatever its body', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: upstream.url, auth: staticAuth } } })

  for (const { contentType, body } of UNPARSABLE) {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const what = `${method} ${JSON.stringify(contentType)} ${JSON.stringify(body)}`
      const res = await rawRequest(proxy.url, { method, path: '/nowhere/x', headers: { 'content-type': contentType }, body })
      assert.equal(res.status, 404, `${what}: ${res.body.toString()}`)
      assert.equal(errorBody(res).code, 'ROUTE_NOT_FOUND', what)
    }
  }
  assert.equal(upstream.requests.length, 0)
})

test('a route passes any body on as it came, without parsing it', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: upstream.url, auth: staticAuth } } })

  for (const [i, { contentType, body }] of UNPARSABLE.entries()) {
    const res = await rawRequest(proxy.url, { method: 'POST', path: `/viv/items/${i}`, headers: { 'content-type': contentType }, body })
    assert.equal(res.status, 200, `${JSON.stringify(contentType)}: ${res.body.toString()}`)
    const received = upstream.requests.at(-1)
    assert.equal(received?.url, `/items/${i}`)
    assert.equal(received?.headers['content-type'], contentType)
    assert.equal(received?.body.toString('utf8'), body)
  }
})
