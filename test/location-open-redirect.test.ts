import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { rawRequest } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const

/**
 * A route in front of an upstream whose `<base>/go?to=X` answers 302 with
 * `Location: X`, X being anything its caller chose (an open redirect on the
 * upstream that checks only that X starts with "/" is common).
 */
async function setup (t: TestContext, prefix: string, basePath: string) {
  const upstream = await recordingUpstream(t, (req, res) => {
    const to = new URL(req.url, 'http://upstream.invalid').searchParams.get('to') ?? '/'
    res.writeHead(302, { location: to }).end()
  })
  const proxy = await startProxy(t, { routes: { api: { prefix, upstream: `${upstream.url}${basePath}`, auth: staticAuth } } })
  const local = prefix === '/' ? '' : prefix
  /** The Location the client gets for an upstream Location, and where a client following it lands. */
  const redirect = async (location: string): Promise<{ location: string, lands: string }> => {
    const path = `${local}/go?to=${encodeURIComponent(location)}`
    const res = await rawRequest(proxy.url, { path })
    assert.equal(res.status, 302, location)
    const sent = res.headers.location as string
    return { location: sent, lands: new URL(sent, `${proxy.url}${path}`).host }
  }
  return { upstream, proxy, redirect, proxyHost: new URL(proxy.url).host, upstreamHost: new URL(upstream.url).host }
}

test('behind a "/" route, an upstream URL with an empty first segment is never rewritten to //host', async (t) => {
  const { upstream, redirect, proxyHost, upstreamHost } = await setup(t, '/', '')
  // Each of these names a path on the upstream; rewritten naively, it became //evil.example/x.
  const upstreamUrls = [
    `${upstream.url}//evil.example/x`,
    `${upstream.url}/\\evil.example/x`,
    `${upstream.url}/\\/evil.example/x`,
    `${upstream.url}/\t/evil.example/x`,
    `${upstream.url.replace('http://', 'http:\\\\')}\\\\evil.example\\x`,
    `${upstream.url}//evil.example`
  ]
  for (const location of upstreamUrls) {
    const got = await redirect(location)
    assert.ok(!got.location.startsWith('//') && !got.location.startsWith('/\\'), `${JSON.stringify(location)} became ${JSON.stringify(got.location)}`)
    assert.equal(got.lands, upstreamHost, `${JSON.stringify(location)} became ${JSON.stringify(got.location)}`)
    assert.equal(got.location, location, 'no local URL means that upstream path: passed on as written')
  }
  // Ordinary upstream URLs are still rewritten to the proxy.
  assert.deepEqual(await redirect(`${upstream.url}/next?x=1`), { location: '/next?x=1', lands: proxyHost })
  assert.deepEqual(await redirect(`${upstream.url}/`), { location: '/', lands: proxyHost })
})

test('behind a "/" route onto a base path, //host hidden after the base path stays on the proxy', async (t) => {
  const { upstream, redirect, proxyHost, upstreamHost } = await setup(t, '/', '/v3')
  const cases: Array<[string, string]> = [
    // Path-absolute: passed on as written, they start with a single "/" and stay on the proxy.
    ['/v3//evil.example/x', proxyHost],
    ['/v3/\\evil.example/x', proxyHost],
    ['/v3/\\\\evil.example', proxyHost],
    // Absolute: passed on as written, on the upstream's own origin.
    [`${upstream.url}/v3//evil.example/x`, upstreamHost],
    [`${upstream.url}/v3/\\evil.example/x`, upstreamHost]
  ]
  for (const [location, host] of cases) {
    const got = await redirect(location)
    assert.ok(!got.location.startsWith('//') && !got.location.startsWith('/\\'), `${JSON.stringify(location)} became ${JSON.stringify(got.location)}`)
    assert.equal(got.lands, host, `${JSON.stringify(location)} became ${JSON.stringify(got.location)}`)
  }
  assert.deepEqual(await redirect('/v3/next'), { location: '/next', lands: proxyHost })
  assert.deepEqual(await redirect(`${upstream.url}/v3`), { location: '/', lands: proxyHost })
})

test('behind a prefix, a rewritten Location always starts with the prefix', async (t) => {
  const { upstream, redirect, proxyHost } = await setup(t, '/viv', '')
  for (const location of [`${upstream.url}//evil.example/x`, `${upstream.url}/\\evil.example/x`, '/\\/evil.example']) {
    const got = await redirect(location)
    if (got.location !== location) assert.ok(got.location.startsWith('/viv/'), `${JSON.stringify(location)} became ${JSON.stringify(got.location)}`)
  }
  assert.deepEqual(await redirect(`${upstream.url}//evil.example/x`), { location: '/viv//evil.example/x', lands: proxyHost })
})

test('relative Locations are passed on untouched and resolve on the proxy', async (t) => {
  for (const prefix of ['/', '/viv']) {
    const { redirect, proxyHost } = await setup(t, prefix, '')
    for (const location of ['next', './next', '../up', '?page=2', '#top', './/evil.example/x', '.\\/evil.example']) {
      const got = await redirect(location)
      assert.equal(got.location, location)
      assert.equal(got.lands, proxyHost, `${prefix}: ${JSON.stringify(location)}`)
    }
  }
})
