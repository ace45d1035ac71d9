import assert from 'node:assert/strict'
import { test } from 'node:test'
import { recordingUpstream } from './helpers.js'
import { call } from './token-lifecycle-helpers.js'
import { startTestServer } from './operability-helpers.js'

test('requests that match no route are counted under the route label "(none)", never an empty one', async (t) => {
  const upstream = await recordingUpstream(t)
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } }
  })
  assert.equal((await call(`${server.url}/nowhere`)).status, 404)
  assert.equal((await call(`${server.url}/apix/y`, { method: 'POST', body: '{}' })).status, 404)
  assert.equal((await call(`${server.url}/api/x`)).status, 200)

  // Recorded as each answer finishes: wait for the last one, bounded.
  let text = ''
  for (let i = 0; i < 50 && !/bearer_proxy_requests_total\{[^}]*route="api"[^}]*\} 1\b/.test(text); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 10))
    text = (await call(`${server.adminUrl}/metrics`)).text
  }
  assert.match(text, /^bearer_proxy_requests_total\{route="\(none\)",method="GET",status_class="4xx"\} 1$/m)
  assert.match(text, /^bearer_proxy_requests_total\{route="\(none\)",method="POST",status_class="4xx"\} 1$/m)
  assert.match(text, /^bearer_proxy_request_duration_seconds_count\{route="\(none\)"\} 2$/m)
  assert.doesNotMatch(text, /route=""/)
})
