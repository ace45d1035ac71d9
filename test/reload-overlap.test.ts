import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import { clientCredentialsRoute, recordingUpstream, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'
import { call } from './token-lifecycle-helpers.js'

test('overlapping reloads run one after another and never close a broker the current config uses', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const config = (clientId: string): Record<string, unknown> => ({
    listen: { host: '127.0.0.1', port: 0 },
    admin: false,
    routes: { r: { ...clientCredentialsRoute(upstream.url, tokens.tokenUrl), auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId, clientSecret: 'reload-secret-1234' } } }
  })
  const server = await startTestServer(t, config('one'))
  // Change the route's auth and change it back, the second reload sent before the first is done.
  await Promise.all([
    server.reload(parseConfig(config('two'), { env: {} })),
    server.reload(parseConfig(config('one'), { env: {} }))
  ])
  const res = await call(`${server.url}/r/x`)
  assert.equal(res.status, 200, res.text)
  assert.equal(tokens.calls.at(-1)?.headers.authorization, `Basic ${Buffer.from('one:reload-secret-1234').toString('base64')}`)
})
