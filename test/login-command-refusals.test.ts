import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli, tempDir } from './cli-helpers.js'
import { writeConfig } from './operability-helpers.js'

const USER_LOGIN = { type: 'device_code', deviceAuthorizationUrl: 'http://127.0.0.1:9/device', tokenUrl: 'http://127.0.0.1:9/token', clientId: 'cli' }

test('login is refused (exit 2) for a route of another type and without a persistent store, before any request', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeConfig(file, {
    stateDir: join(dir, 'state'),
    routes: {
      machine: { upstream: 'http://127.0.0.1:9', auth: { type: 'client_credentials', tokenUrl: 'http://127.0.0.1:9/token', clientId: 'c', clientSecret: 'client-secret-value-0123' } },
      person: { upstream: 'http://127.0.0.1:9', auth: USER_LOGIN }
    }
  })
  const other = await runCli(['login', 'machine', '-c', file, '--no-browser'])
  assert.equal(other.code, 2)
  assert.match(other.stderr, /route "machine" is client_credentials: only authorization_code and device_code routes/)
  assert.doesNotMatch(other.stderr, /client-secret-value/)

  const memory = join(dir, 'memory.json')
  writeConfig(memory, { routes: { person: { upstream: 'http://127.0.0.1:9', auth: USER_LOGIN } } })
  const noStore = await runCli(['login', 'person', '-c', memory, '--no-browser'])
  assert.equal(noStore.code, 2)
  assert.match(noStore.stderr, /set stateDir, or store/)

  // check and token say what to do, with no token request (nothing listens on port 9 anyway).
  const check = await runCli(['check', '-c', file])
  assert.equal(check.code, 1)
  assert.match(check.stdout, /^person\t\/person\tdevice_code\tlogin required\t.*run `bearer-proxy login person`$/m)
  const token = await runCli(['token', 'person', '-c', file])
  assert.equal(token.code, 1)
  assert.equal(token.stdout, '')
  assert.match(token.stderr, /run `bearer-proxy login person`/)

  const missing = await runCli(['login', '-c', file])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /login needs a ROUTE name/)
  const unknown = await runCli(['login', 'nope', '-c', file])
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /no route "nope"; routes: machine, person/)
})

test('readyWithoutLogin is refused on a route that has no login', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeConfig(file, { routes: { machine: { upstream: 'http://127.0.0.1:9', readyWithoutLogin: true, auth: { type: 'static', token: 'static-key' } } } })
  const result = await runCli(['check', '-c', file])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /routes\.machine\.readyWithoutLogin: applies only to authorization_code and device_code routes/)
})
