/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { configPath, loadConfigFile, parseConfig } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import type { AuthConfigOf } from '../src/schemes/registry.js'
import { runCli, tempDir } from './cli-helpers.js'

const UPSTREAM = 'http://127.0.0.1:9'

function auth<T extends 'static' | 'client_credentials' | 'password'> (config: Config, type: T, index = 0): AuthConfigOf<T> {
  const found = config.routes[index]?.auth
  assert.equal(found?.type, type)
  return found as AuthConfigOf<T>
}

test('${env:NAME} and ${NAME} read the environment', () => {
  const env = { API_TOKEN: 'tok-from-env', CLIENT_SECRET: 'cs-from-env' }
  const config = parseConfig({
    routes: {
      a: { upstream: UPSTREAM, auth: { type: 'static', token: '${env:API_TOKEN}' } },
      b: { upstream: UPSTREAM, auth: { type: 'client_credentials', tokenUrl: 'http://127.0.0.1:9/token', clientId: 'id', clientSecret: '${CLIENT_SECRET}' } }
    }
  }, { env })
  assert.equal(auth(config, 'static', 0).token, 'tok-from-env')
  assert.equal(auth(config, 'client_credentials', 1).clientSecret, 'cs-from-env')
})

test('a reference embedded in a longer string, several in one value', () => {
  const env = { API_PORT: '8443', TENANT: 'acme', KEY: 'k-123' }
  const config = parseConfig({
    routes: { a: { upstream: 'https://127.0.0.1:${API_PORT}/v3', auth: { type: 'static', token: 'pre-${env:TENANT}-${KEY}-post' } } }
  }, { env })
  assert.equal(config.routes[0]?.upstream, 'https://127.0.0.1:8443/v3')
  assert.equal(auth(config, 'static').token, 'pre-acme-k-123-post')
})

test('${file:/abs/path} reads the file and trims its trailing newline', (t) => {
  const dir = tempDir(t)
  const secretFile = join(dir, 'client-secret')
  writeFileSync(secretFile, 'file-secret-value\n')
  const crlf = join(dir, 'password')
  writeFileSync(crlf, 'pass word\r\n')
  const config = parseConfig({
    routes: {
      a: { upstream: UPSTREAM, auth: { type: 'password', tokenUrl: 'http://127.0.0.1:9/token', clientId: 'id', clientSecret: `\${file:${secretFile}}`, username: 'u', password: `\${file:${crlf}}` } }
    }
  }, { env: {} })
  const a = auth(config, 'password')
  assert.equal(a.clientSecret, 'file-secret-value')
  assert.equal(a.password, 'pass word')
})

test('${file:relative} resolves against the config file\'s folder, not the working directory', (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'secrets'))
  writeFileSync(join(dir, 'secrets', 'token.txt'), 'relative-file-token\n')
  const file = join(dir, 'proxy.yaml')
  writeFileSync(file, `routes:\n  a:\n    upstream: ${UPSTREAM}\n    auth: { type: static, token: "\${file:secrets/token.txt}" }\n`)
  assert.notEqual(process.cwd(), dir)
  assert.equal(auth(loadConfigFile(file, {}), 'static').token, 'relative-file-token')
})

test('YAML and JSON config files both load, to the same config', (t) => {
  const dir = tempDir(t)
  const raw = {
    listen: { port: 18080 },
    routes: { api: { upstream: UPSTREAM, auth: { type: 'static', token: '${env:API_TOKEN}', header: 'X-Api-Key', scheme: '' } } }
  }
  const jsonFile = join(dir, 'proxy.json')
  writeFileSync(jsonFile, JSON.stringify(raw, null, 2))
  const yamlFile = join(dir, 'proxy.yaml')
  writeFileSync(yamlFile, [
    'listen: { port: 18080 }',
    'routes:',
    '  api:',
    `    upstream: ${UPSTREAM}`,
    '    auth:',
    '      type: static',
    '      token: ${env:API_TOKEN}',
    '      header: X-Api-Key',
    '      scheme: ""',
    ''
  ].join('\n'))
  const env = { API_TOKEN: 'k' }
  const fromJson = loadConfigFile(jsonFile, env)
  const fromYaml = loadConfigFile(yamlFile, env)
  assert.deepEqual(fromYaml, fromJson)
  assert.equal(fromJson.listen.port, 18080)
  const a = auth(fromJson, 'static')
  assert.equal(a.token, 'k')
  assert.equal(a.header, 'x-api-key')
  assert.equal(a.scheme, '')
})

test('defaults from SPEC are applied', () => {
  const config = parseConfig({
    routes: {
      vivacity: { upstream: 'https://api.example.test', auth: { type: 'client_credentials', tokenUrl: 'https://auth.example.test/token', clientId: 'id', clientSecret: 's' } },
      other: { prefix: '/elsewhere/', upstream: 'https://api.example.test/v3', auth: { type: 'static', token: 't' } }
    }
  }, { env: {} })
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8080 })
  assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9901 })
  assert.deepEqual(config.tokens, { refreshAhead: 0.8, minValidity: 30, defaultTtl: 3600, maxRequestsPerMinute: 30 })
  assert.deepEqual(config.security.allowedHosts, [])
  assert.deepEqual(config.security.allowedOrigins, [])
  assert.equal(config.security.clientKey, undefined)

  const [vivacity, other] = config.routes
  assert.equal(vivacity?.name, 'vivacity')
  assert.equal(vivacity?.prefix, '/vivacity')
  assert.deepEqual(vivacity?.retryOn, [401])
  assert.equal(vivacity?.timeout, 30000)
  const cc = auth(config, 'client_credentials', 0)
  assert.equal(cc.bodyEncoding, 'form')
  assert.equal(other?.prefix, '/elsewhere')
  const st = auth(config, 'static', 1)
  assert.equal(st.header, 'authorization')
  assert.equal(st.scheme, 'Bearer')
})

test('partial sections keep the other defaults; admin: false disables the admin port', () => {
  const config = parseConfig({
    listen: { port: 0 },
    admin: false,
    tokens: { minValidity: 5 },
    routes: { a: { upstream: UPSTREAM, auth: { type: 'static', token: 't' } } }
  }, { env: {} })
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 0 })
  assert.equal(config.admin, false)
  assert.deepEqual(config.tokens, { refreshAhead: 0.8, minValidity: 5, defaultTtl: 3600, maxRequestsPerMinute: 30 })
})

test('config path: -c FILE, else $BEARER_PROXY_CONFIG, else ./config/bearer-proxy.yaml', () => {
  assert.equal(configPath('/etc/a.yaml', { BEARER_PROXY_CONFIG: '/etc/b.yaml' }), '/etc/a.yaml')
  assert.equal(configPath(undefined, { BEARER_PROXY_CONFIG: '/etc/b.yaml' }), '/etc/b.yaml')
  assert.equal(configPath(undefined, {}), resolve('config/bearer-proxy.yaml'))
  // Relative paths are taken from the working directory.
  assert.equal(configPath('my.yaml', {}), resolve('my.yaml'))
})

test('the CLI looks for its config in that order', async (t) => {
  const dir = tempDir(t)
  const write = (file: string, name: string): void => {
    writeFileSync(file, `routes:\n  ${name}:\n    upstream: ${UPSTREAM}\n    auth: { type: static, token: t }\n`)
  }
  mkdirSync(join(dir, 'config'))
  write(join(dir, 'config', 'bearer-proxy.yaml'), 'fromdefault')
  write(join(dir, 'env.yaml'), 'fromenv')
  write(join(dir, 'flag.yaml'), 'fromflag')
  const env = { BEARER_PROXY_CONFIG: join(dir, 'env.yaml') }
  // Independent processes: run them side by side.
  const [flag, fromEnv, fallback] = await Promise.all([
    runCli(['check', '-c', 'flag.yaml'], { cwd: dir, env }),
    runCli(['check'], { cwd: dir, env }),
    runCli(['check'], { cwd: dir })
  ])
  for (const [result, name] of [[flag, 'fromflag'], [fromEnv, 'fromenv'], [fallback, 'fromdefault']] as const) {
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, new RegExp(`^${name}\\t`), name)
  }
})
