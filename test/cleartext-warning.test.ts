import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startProxy } from './helpers.js'
import { canary } from './operability-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const

test('each plain-http upstream or token endpoint beyond loopback gets one warn line at start', async (t) => {
  const clientSecret = canary('client-secret')
  const sharedsecret = canary('sharedsecret')
  const netosecret = Buffer.from(JSON.stringify({ url: 'http://tenant.netography.example.test/api/v1', shortname: 'acme', appname: 'proxy', appkey: canary('appkey'), sharedsecret })).toString('base64')
  const proxy = await startProxy(t, {
    routes: {
      remote: { upstream: 'http://api.example.test/v1', auth: staticAuth },
      tokens: {
        upstream: 'https://api.example.test',
        // user:password, path and query may carry secrets: only the origin is named.
        auth: { type: 'client_credentials', tokenUrl: 'http://client:pw-in-url@auth.example.test:8080/oauth/token?tenant=t-secret', clientId: 'c', clientSecret }
      },
      login: {
        upstream: 'https://api.example.test',
        auth: {
          type: 'login',
          tokenUrl: 'https://auth.example.test/login',
          refresh: { url: 'http://refresh.example.test/refresh' },
          // A field of the login body is content, not an endpoint.
          body: { user: 'u', url: 'http://content.example.test/' }
        }
      },
      neto: { auth: { type: 'netography', netosecret } },
      // Loopback, however spelled, and https are fine.
      local: { upstream: 'http://localhost:1234', auth: { type: 'client_credentials', tokenUrl: 'http://127.0.0.5:99/token', clientId: 'c', clientSecret } },
      v6: { upstream: 'http://[::1]:1234/x', auth: staticAuth },
      mapped: { upstream: 'http://[::ffff:127.0.0.1]:1234', auth: staticAuth },
      short: { upstream: 'http://127.1:1234', auth: staticAuth },
      secure: { upstream: 'https://api.example.test', auth: staticAuth }
    }
  })

  const warned = proxy.logs.lines.filter((l) => l.event === 'cleartext')
  assert.deepEqual(warned.map((l) => [l.route, l.key, l.origin]).sort(), [
    ['login', 'auth.refresh.url', 'http://refresh.example.test'],
    ['neto', 'auth.netosecret.url', 'http://tenant.netography.example.test'],
    ['neto', 'upstream', 'http://tenant.netography.example.test'],
    ['remote', 'upstream', 'http://api.example.test'],
    ['tokens', 'auth.tokenUrl', 'http://auth.example.test:8080']
  ])
  for (const line of warned) {
    assert.equal(line.level, 40, 'warn level')
    assert.match(String(line.msg), new RegExp(`routes\\.${String(line.route)}\\.${String(line.key).replace(/\./g, '\\.')}`))
  }
  const text = proxy.logs.text()
  for (const secret of ['pw-in-url', 't-secret', clientSecret, sharedsecret, netosecret]) assert.ok(!text.includes(secret), `${secret} in the logs`)
})

test('a config with only loopback and https URLs logs no cleartext warning', async (t) => {
  const proxy = await startProxy(t, {
    routes: {
      api: { upstream: 'https://api.example.test', auth: { type: 'client_credentials', tokenUrl: 'https://auth.example.test/token', clientId: 'c', clientSecret: 's' } },
      dev: { upstream: 'http://127.0.0.1:9999', auth: staticAuth }
    }
  })
  assert.deepEqual(proxy.logs.lines.filter((l) => l.event === 'cleartext'), [])
})
