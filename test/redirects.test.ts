import assert from 'node:assert/strict'
import { test } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { rawRequest } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const

/** An upstream whose `/v3/go?to=X&status=N` answers a redirect to X. */
async function redirectingUpstream (t: Parameters<typeof recordingUpstream>[0]) {
  return await recordingUpstream(t, (req, res) => {
    const url = new URL(req.url, 'http://upstream.invalid')
    const to = url.searchParams.get('to')
    if (url.pathname === '/v3/go' && to !== null) {
      res.writeHead(Number(url.searchParams.get('status') ?? '302'), { location: to, 'content-type': 'text/plain' }).end('moved')
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('target')
  })
}

test('the proxy passes a redirect to the client and does not follow it', async (t) => {
  const upstream = await redirectingUpstream(t)
  const elsewhere = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: `${upstream.url}/v3`, auth: staticAuth } } })

  for (const status of [301, 302, 303, 307, 308]) {
    const to = `${upstream.url}/v3/next?x=${status}`
    const res = await rawRequest(proxy.url, { path: `/viv/go?to=${encodeURIComponent(to)}&status=${status}` })
    assert.equal(res.status, status)
    assert.equal(res.body.toString(), 'moved')
  }
  const offsite = await rawRequest(proxy.url, { path: `/viv/go?to=${encodeURIComponent(`${elsewhere.url}/landing`)}` })
  assert.equal(offsite.status, 302)

  // Only the redirecting requests themselves: no target was fetched, neither on the upstream nor elsewhere.
  assert.deepEqual(upstream.requests.map((r) => new URL(r.url, 'http://x').pathname), Array(6).fill('/v3/go'))
  assert.equal(elsewhere.requests.length, 0)
})

test("a Location into the route's upstream is rewritten to the local path", async (t) => {
  const upstream = await redirectingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: `${upstream.url}/v3`, auth: staticAuth } } })

  const cases: Array<[string, string]> = [
    [`${upstream.url}/v3/next?x=1`, '/viv/next?x=1'],
    ['/v3/next', '/viv/next'],
    ['/v3/next?x=1&y=%2F', '/viv/next?x=1&y=%2F'],
    [`${upstream.url}/v3/deep/er/path`, '/viv/deep/er/path']
  ]
  for (const [location, local] of cases) {
    const res = await rawRequest(proxy.url, { path: `/viv/go?to=${encodeURIComponent(location)}` })
    assert.equal(res.status, 302, location)
    assert.equal(res.headers.location, local, location)
  }
})

test('a Location into an upstream without base path, behind prefix "/", is rewritten', async (t) => {
  const upstream = await recordingUpstream(t, (req, res) => {
    res.writeHead(302, { location: req.url === '/abs' ? `${upstreamUrl}/next?x=1` : '/next' }).end()
  })
  const upstreamUrl = upstream.url
  const proxy = await startProxy(t, { routes: { all: { prefix: '/', upstream: upstream.url, auth: staticAuth } } })

  assert.equal((await rawRequest(proxy.url, { path: '/abs' })).headers.location, '/next?x=1')
  assert.equal((await rawRequest(proxy.url, { path: '/rel' })).headers.location, '/next')
})

test('a Location pointing at another host is passed on untouched', async (t) => {
  const upstream = await redirectingUpstream(t)
  const other = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: `${upstream.url}/v3`, auth: staticAuth } } })

  const untouched = [
    'https://login.example.com/authorize?next=%2Fv3%2Fnext',
    `${other.url}/v3/next?x=1`, // same host name, another port: another origin
    `https://127.0.0.1:${upstream.port}/v3/next`, // another scheme: another origin
    '//cdn.example.com/v3/file'
  ]
  for (const location of untouched) {
    const res = await rawRequest(proxy.url, { path: `/viv/go?to=${encodeURIComponent(location)}` })
    assert.equal(res.status, 302, location)
    assert.equal(res.headers.location, location)
  }
  assert.equal(other.requests.length, 0)
})
