import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { rawRequest, type RawResponse } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const
/** What a browser sends to any port of localhost: a notebook's and a dev server's session cookies among them. */
const LOCALHOST_COOKIES = 'jupyter-session=notebook-secret-1; _xsrf=2|abc; next-auth.session-token=dev-server-secret'

/** One route (`basePath` goes on the upstream URL) in front of an upstream that answers with the given Set-Cookie lines. */
async function setup (t: TestContext, { basePath = '', ...route }: Record<string, unknown>, setCookie: string | string[] = []) {
  const upstream = await recordingUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': setCookie }).end('ok')
  })
  const proxy = await startProxy(t, { routes: { api: { ...route, upstream: `${upstream.url}${basePath as string}`, auth: staticAuth } } })
  return { upstream, proxy }
}

function setCookies (res: RawResponse): string[] {
  return res.rawHeaders.filter((_, i) => i % 2 === 1 && res.rawHeaders[i - 1]?.toLowerCase() === 'set-cookie')
}

test("the client's Cookie header does not reach an upstream unless the route forwards cookies", async (t) => {
  const { upstream, proxy } = await setup(t, { prefix: '/api' })
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { cookie: LOCALHOST_COOKIES } })
  assert.equal(res.status, 200)
  assert.equal(upstream.requests[0]?.headers.cookie, undefined)
  assert.doesNotMatch(upstream.requests[0]?.rawHeaders.join('\n') ?? '', /secret/)
})

test('a route with forwardCookies: true passes the Cookie header on', async (t) => {
  const { upstream, proxy } = await setup(t, { prefix: '/api', forwardCookies: true })
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { cookie: LOCALHOST_COOKIES } })
  assert.equal(res.status, 200)
  assert.equal(upstream.requests[0]?.headers.cookie, LOCALHOST_COOKIES)
})

test("an upstream's Set-Cookie lines are each scoped under the route's prefix, Domain dropped", async (t) => {
  const { proxy } = await setup(t, { prefix: '/api' }, [
    'sid=s1; Path=/; HttpOnly; SameSite=Lax',
    'pref=dark; Path=/settings/ui',
    'plain=1',
    'wide=2; Domain=api.example.com; Path=/; Secure',
    'twice=3; path=/first; Max-Age=60; Path=/second',
    'odd=4; Path=relative; Expires=Wed, 21 Oct 2037 07:28:00 GMT',
    'empty=5; Path='
  ])
  const res = await rawRequest(proxy.url, { path: '/api/login' })
  assert.equal(res.status, 200)
  assert.deepEqual(setCookies(res), [
    'sid=s1; HttpOnly; SameSite=Lax; Path=/api',
    'pref=dark; Path=/api/settings/ui',
    'plain=1; Path=/api',
    'wide=2; Secure; Path=/api',
    // The last Path attribute is the one a browser uses.
    'twice=3; Max-Age=60; Path=/api/second',
    // A Path not starting with "/" counts as none.
    'odd=4; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/api',
    'empty=5; Path=/api'
  ])
})

test('a single Set-Cookie line is scoped too', async (t) => {
  const { proxy } = await setup(t, { prefix: '/api' }, 'sid=s1; Path=/')
  assert.deepEqual(setCookies(await rawRequest(proxy.url, { path: '/api/x' })), ['sid=s1; Path=/api'])
})

test("cookie paths on the upstream's base path map like request paths", async (t) => {
  const { proxy } = await setup(t, { prefix: '/api', basePath: '/v3' }, [
    'a=1; Path=/', 'b=2; Path=/v3', 'c=3; Path=/v3/', 'd=4; Path=/v3/items', 'e=5; Path=/other', 'f=6'
  ])
  assert.deepEqual(setCookies(await rawRequest(proxy.url, { path: '/api/x' })), [
    'a=1; Path=/api', 'b=2; Path=/api', 'c=3; Path=/api', 'd=4; Path=/api/items', 'e=5; Path=/api/other', 'f=6; Path=/api'
  ])
})

test('behind a "/" route cookie paths stay as they are; Domain is still dropped', async (t) => {
  const lines = ['sid=s1; Path=/; HttpOnly', 'pref=dark; Path=/settings', 'plain=1', 'wide=2; Path=/; Domain=example.com']
  const { proxy } = await setup(t, { prefix: '/' }, lines)
  assert.deepEqual(setCookies(await rawRequest(proxy.url, { path: '/x' })), ['sid=s1; Path=/; HttpOnly', 'pref=dark; Path=/settings', 'plain=1', 'wide=2; Path=/'])

  const onBase = await setup(t, { prefix: '/', basePath: '/v3' }, ['a=1; Path=/v3', 'b=2; Path=/v3/items', 'c=3; Path=/'])
  assert.deepEqual(setCookies(await rawRequest(onBase.proxy.url, { path: '/x' })), ['a=1; Path=/', 'b=2; Path=/items', 'c=3; Path=/'])
})

test('a cookie whose route prefix no Path attribute can carry is dropped rather than widened', async (t) => {
  const { proxy } = await setup(t, { prefix: '/a;b' }, ['sid=s1; Path=/', 'other=2'])
  const res = await rawRequest(proxy.url, { path: '/a;b/x' })
  assert.equal(res.status, 200)
  assert.deepEqual(setCookies(res), [])
})
