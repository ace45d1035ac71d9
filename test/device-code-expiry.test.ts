import assert from 'node:assert/strict'
import { test } from 'node:test'
import { publicClient } from '../src/auth/client-auth.js'
import { deviceCodeLogin } from '../src/auth/device-code-login.js'
import { LoginError } from '../src/auth/login-error.js'
import { DEVICE_CODE_GRANT, startLoginProvider } from './fixtures/oidc-login-provider.js'
import { sendJson, tokenServer } from './helpers.js'
import { carriesNone, FakeClock, tokenClient } from './login-helpers.js'

test('expired_token from the server ends the login with a clear error that carries no device code', async (t) => {
  const op = await startLoginProvider({ deviceInterval: 1 })
  t.after(() => op.close())
  const clock = new FakeClock()
  clock.onSleep = (n) => { if (n === 2) op.expireDeviceCodes() }
  await assert.rejects(deviceCodeLogin({
    deviceAuthorizationUrl: op.deviceAuthorizationUrl,
    clientAuth: publicClient(op.clients.public.clientId),
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    present: () => {},
    now: clock.read,
    sleep: clock.sleep
  }), (err: unknown) => {
    assert.ok(err instanceof LoginError)
    assert.equal(err.reason, 'expired')
    assert.match(err.message, /expired/)
    assert.match(err.message, /run login again/)
    const deviceCode = op.tokenRequests[0]?.form.get('device_code') ?? undefined
    assert.ok(carriesNone(err.message, [deviceCode]))
    return true
  })
  const polls = op.tokenRequests.filter((r) => r.form.get('grant_type') === DEVICE_CODE_GRANT)
  assert.deepEqual(polls.map((p) => p.error), ['authorization_pending', 'expired_token'])
})

test('a server that answers authorization_pending forever is polled only until expires_in', async (t) => {
  let polls = 0
  const server = await tokenServer(t, (call, _n, res) => {
    if (call.form.get('grant_type') === DEVICE_CODE_GRANT) {
      polls++
      return sendJson(res, 400, { error: 'authorization_pending' })
    }
    sendJson(res, 200, { device_code: 'device-code-value-0123', user_code: 'WDJB-MJHT', verification_uri: 'http://127.0.0.1/device', expires_in: 30, interval: 5 })
  })
  const clock = new FakeClock()
  const started = clock.now
  await assert.rejects(deviceCodeLogin({
    deviceAuthorizationUrl: `${server.url}/device`,
    clientAuth: publicClient('cli'),
    grant: tokenClient(server.tokenUrl, publicClient('cli')),
    present: () => {},
    now: clock.read,
    sleep: clock.sleep
  }), (err: unknown) => err instanceof LoginError && err.reason === 'expired' && /within 30 s/.test(err.message) && carriesNone(err.message, ['device-code-value-0123']))
  assert.ok(polls >= 4 && polls <= 6, `polls: ${polls}`)
  assert.ok(clock.now - started <= 30_000, 'no poll after the code expired')
})

test('an injected clock that stands still cannot make the polling spin: the count is bounded too', async (t) => {
  let polls = 0
  const server = await tokenServer(t, (call, _n, res) => {
    if (call.form.get('grant_type') === DEVICE_CODE_GRANT) {
      polls++
      return sendJson(res, 400, { error: 'authorization_pending' })
    }
    sendJson(res, 200, { device_code: 'device-code-value-0123', user_code: 'WDJB-MJHT', verification_uri: 'http://127.0.0.1/device', expires_in: 20, interval: 1 })
  })
  await assert.rejects(deviceCodeLogin({
    deviceAuthorizationUrl: `${server.url}/device`,
    clientAuth: publicClient('cli'),
    grant: tokenClient(server.tokenUrl, publicClient('cli')),
    present: () => {},
    now: () => 0,
    sleep: async () => {}
  }), (err: unknown) => err instanceof LoginError && err.reason === 'expired')
  assert.ok(polls <= 20, `polls: ${polls}`)
})
