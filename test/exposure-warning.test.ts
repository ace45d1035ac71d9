import assert from 'node:assert/strict'
import { test } from 'node:test'
import { join } from 'node:path'
import { buildAdminApp } from '../src/admin/app.js'
import { createLogger } from '../src/logger.js'
import { loadConfigFile } from '../src/config/load.js'
import { exposedWithoutProtection } from '../src/proxy/guards.js'
import { ROOT, tempDir } from './cli-helpers.js'
import { LogSink, startProxy } from './helpers.js'
import { startTestServer } from './operability-helpers.js'

/**
 * A port that adds credentials, reachable from other machines without a
 * client key, is announced loudly at start. A Host allow-list does not count
 * as protection: a Host header is whatever the client chooses to send.
 */
const KEY = 'local-proxy-key-5f2c9a71e4'
const routes = { api: { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 'route-key-1234' } } }

test('listening beyond loopback without clientKey logs an "exposed" warning naming the address and the missing clientKey, whatever allowedHosts says', async (t) => {
  // startProxy always listens on 127.0.0.1; the warning depends on listen.host in the config and is logged when the app is built.
  const cases: Array<[string, Record<string, unknown>, string | undefined]> = [
    ['0.0.0.0', { listen: { host: '0.0.0.0', port: 8080 } }, '0.0.0.0:8080'],
    ['::', { listen: { host: '::', port: 8080 } }, '[::]:8080'],
    ['a LAN address', { listen: { host: '192.0.2.10', port: 8081 } }, '192.0.2.10:8081'],
    ['a host name', { listen: { host: 'devbox.internal', port: 8080 } }, 'devbox.internal:8080'],
    ['0.0.0.0 with allowedHosts', { listen: { host: '0.0.0.0', port: 8080 }, security: { allowedHosts: ['devbox.internal'] } }, '0.0.0.0:8080'],
    ['0.0.0.0 with a client key', { listen: { host: '0.0.0.0', port: 8080 }, security: { clientKey: KEY } }, undefined],
    ['127.0.0.1', { listen: { host: '127.0.0.1', port: 8080 } }, undefined],
    ['127.0.0.5', { listen: { host: '127.0.0.5', port: 8080 } }, undefined],
    ['localhost', { listen: { host: 'localhost', port: 8080 } }, undefined],
    ['::1', { listen: { host: '::1', port: 8080 } }, undefined]
  ]
  for (const [what, config, address] of cases) {
    const proxy = await startProxy(t, { ...config, routes })
    const exposed = proxy.logs.lines.filter((l) => l.event === 'exposed')
    assert.equal(exposed.length, address === undefined ? 0 : 1, what)
    if (address !== undefined) {
      assert.equal(exposed[0]?.level, 40, `${what}: logged as a warning`)
      assert.equal(exposed[0]?.address, address, what)
      assert.ok(String(exposed[0]?.msg).includes(address), `${what}: the message names ${address}: ${String(exposed[0]?.msg)}`)
      assert.match(String(exposed[0]?.msg), /without security\.clientKey/, what)
    }
    assert.ok(!proxy.logs.text().includes(KEY), `${what}: the key is not logged`)
  }
})

test('a Unix socket listener logs no "exposed" warning: its file mode is the access control', async (t) => {
  const server = await startTestServer(t, { listen: { path: join(tempDir(t), 'proxy.sock') }, routes })
  assert.equal(server.logs.lines.filter((l) => l.event === 'exposed').length, 0)
})

test('an admin port configured beyond loopback logs its own "exposed" warning; on loopback none', async (t) => {
  // The admin app is built, not listened: the warning depends on admin.host in the config.
  const cases: Array<[Record<string, unknown>, string | undefined]> = [
    [{ host: '0.0.0.0', port: 9901 }, '0.0.0.0:9901'],
    [{ host: '::', port: 9902 }, '[::]:9902'],
    [{ host: '127.0.0.1', port: 9901 }, undefined],
    [{ path: '/run/bearer-proxy-admin.sock' }, undefined]
  ]
  for (const [admin, address] of cases) {
    const proxy = await startProxy(t, { admin, routes })
    const logs = new LogSink()
    const app = await buildAdminApp(() => proxy, createLogger({ level: 'debug', destination: logs }))
    t.after(() => app.close())
    const lines = logs.lines.filter((l) => l.event === 'exposed')
    assert.equal(lines.length, address === undefined ? 0 : 1, JSON.stringify(admin))
    if (address !== undefined) {
      assert.equal(lines[0]?.listener, 'admin')
      assert.equal(lines[0]?.level, 40)
      assert.equal(lines[0]?.address, address)
    }
  }
})

test('the Docker example config, with the image\'s --host 0.0.0.0, takes its client key from BEARER_PROXY_CLIENT_KEY: not exposed', () => {
  const env = { BEARER_PROXY_CLIENT_KEY: KEY, API_UPSTREAM: 'https://api.example.test', API_TOKEN_URL: 'https://auth.example.test/token', API_CLIENT_ID: 'id', API_CLIENT_SECRET: 'secret' }
  const config = loadConfigFile(join(ROOT, 'config', 'bearer-proxy.docker.yaml'), env)
  config.listen = { host: '0.0.0.0', port: 8080 }
  assert.equal(config.security.clientKey, KEY)
  assert.equal(exposedWithoutProtection(config), false)
  assert.equal(exposedWithoutProtection({ ...config, security: { ...config.security, clientKey: undefined } }), true)
})
