/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfigFile, parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'
import { runCli, tempDir } from './cli-helpers.js'

const routes = { api: { upstream: 'http://127.0.0.1:9/', auth: { type: 'static', token: 'static-token-value' } } }
const PASSWORD = 'redis-pass-CANARY-77f3'

function issuesOf (input: Record<string, unknown>): string[] {
  try {
    parseConfig({ ...input, routes })
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.issues
  }
  assert.fail('the config loaded')
}

test('a Redis store: its URL and prefix, the default prefix, and database, user and password in the URL', () => {
  const config = parseConfig({ store: { type: 'redis', url: `redis://user:${PASSWORD}@127.0.0.1:6380/2` }, routes })
  assert.deepEqual(config.store, { type: 'redis', url: `redis://user:${PASSWORD}@127.0.0.1:6380/2`, keyPrefix: 'bearer-proxy:' })
  assert.equal(config.stateDir, undefined)
  const tls = parseConfig({ store: { type: 'redis', url: 'rediss://redis.internal', keyPrefix: 'team-a:' }, routes })
  assert.deepEqual(tls.store, { type: 'redis', url: 'rediss://redis.internal', keyPrefix: 'team-a:' })
  assert.equal(parseConfig({ store: { type: 'memory' }, routes }).store, undefined, 'memory is the default: no store')
})

test('a bad Redis store names its key path and never echoes the URL, which may carry a password', () => {
  const cases: Array<[unknown, string]> = [
    [{ type: 'redis', url: `http://:${PASSWORD}@127.0.0.1:6379` }, 'store.url: must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0'],
    [{ type: 'redis', url: `127.0.0.1:6379/${PASSWORD}` }, 'store.url: must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0'],
    [{ type: 'redis', url: `redis://:${PASSWORD}@127.0.0.1:6379/0?tls=true` }, 'store.url: must not carry a query or fragment'],
    [{ type: 'redis', url: `redis://:${PASSWORD}@127.0.0.1:6379/zero` }, 'store.url: may name only a database number as its path, e.g. redis://127.0.0.1:6379/0'],
    [{ type: 'redis' }, 'store.url: is required'],
    [{ type: 'redis', url: 'redis://127.0.0.1', keyPrefix: '' }, 'store.keyPrefix: must not be empty'],
    [{ type: 'redis', url: 'redis://127.0.0.1', dir: './state' }, 'store.dir: unknown key'],
    [{ type: 'file' }, 'store.dir: is required'],
    [{ type: 'memcached' }, 'store.type: must be one of: memory, file, redis']
  ]
  for (const [store, issue] of cases) {
    const issues = issuesOf({ store })
    assert.deepEqual(issues, [issue], JSON.stringify(store))
    assert.ok(!issues.join('\n').includes(PASSWORD))
  }
})

test('stateDir and store together are a config error naming stateDir: stateDir is short for the file store', () => {
  assert.deepEqual(issuesOf({ stateDir: './state', store: { type: 'redis', url: 'redis://127.0.0.1:6379/0' } }), [
    'stateDir: cannot be combined with store (stateDir is short for store: { type: file, dir }): give one of them'
  ])
})

test('store: { type: file, dir } is stateDir spelled out: resolved beside the config file, checked, and named store.dir when unsafe', { skip: process.platform === 'win32' }, (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'cfg.json')
  writeFileSync(file, JSON.stringify({ store: { type: 'file', dir: 'state' }, routes }))
  const config = loadConfigFile(file, {})
  assert.deepEqual(config.store, { type: 'file', dir: join(dir, 'state') })
  assert.equal(config.stateDir, join(dir, 'state'), 'the file store\'s dir, whichever way it was given')
  assert.deepEqual(parseConfig({ stateDir: join(dir, 'state'), routes }).store, { type: 'file', dir: join(dir, 'state') })

  const open = join(dir, 'open')
  mkdirSync(open)
  chmodSync(open, 0o777)
  try {
    parseConfig({ store: { type: 'file', dir: open }, routes })
    assert.fail('loaded')
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    assert.match(err.issues[0] ?? '', /^store\.dir: .* may be written by other users/)
  }
})

test('the replicas example config validates with its variables and secret files', (t) => {
  const dir = tempDir(t)
  const text = readFileSync(new URL('../config/bearer-proxy.replicas.yaml', import.meta.url), 'utf8')
    .replace('${file:/run/secrets/state_key}', '${file:state_key}')
    .replace('${file:/run/secrets/api_client_secret}', '${file:api_client_secret}')
  writeFileSync(join(dir, 'state_key'), 'wH3pQ0m9XvYk2s8L1cT7rB5nA4dF6gJ0uE9iO3yZ2qM=\n')
  writeFileSync(join(dir, 'api_client_secret'), 'client-secret\n')
  writeFileSync(join(dir, 'cfg.yaml'), text)
  const config = loadConfigFile(join(dir, 'cfg.yaml'), { REDIS_URL: 'redis://redis:6379/0', BEARER_PROXY_CLIENT_KEY: 'k', API_UPSTREAM: 'https://api.example.com', API_TOKEN_URL: 'https://auth.example.com/oauth/token', API_CLIENT_ID: 'c' })
  assert.deepEqual(config.store, { type: 'redis', url: 'redis://redis:6379/0', keyPrefix: 'bearer-proxy:' })
})

test('`check` names a bad store key and exits 2', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'cfg.json')
  writeFileSync(file, JSON.stringify({ store: { type: 'redis', url: `redis://:${PASSWORD}@127.0.0.1:6379/0/x` }, routes }))
  const result = await runCli(['check', '-c', file])
  assert.equal(result.code, 2)
  assert.equal(result.stderr, 'store.url: may name only a database number as its path, e.g. redis://127.0.0.1:6379/0\n')
  assert.ok(!(result.stdout + result.stderr).includes(PASSWORD))
})
