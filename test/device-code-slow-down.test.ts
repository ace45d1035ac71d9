import assert from 'node:assert/strict'
import { test } from 'node:test'
import { publicClient } from '../src/auth/client-auth.js'
import { deviceCodeLogin, type DevicePrompt } from '../src/auth/device-code-login.js'
import { DEVICE_CODE_GRANT, startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser, FakeClock, tokenClient } from './login-helpers.js'

test('slow_down adds 5 s to the polling interval for every later poll (RFC 8628 §3.5)', async (t) => {
  const clock = new FakeClock()
  // The server announces 2 s but refuses polls closer than 6 s.
  const op = await startLoginProvider({ deviceInterval: 2, pollLimit: { now: clock.read, minIntervalS: 6 } })
  t.after(() => op.close())
  let prompt: DevicePrompt | undefined
  clock.onSleep = async (n) => {
    if (n === 5) await new Browser().walk(prompt?.verificationUriComplete ?? '')
  }
  const tokens = await deviceCodeLogin({
    deviceAuthorizationUrl: op.deviceAuthorizationUrl,
    scope: 'openid',
    clientAuth: publicClient(op.clients.public.clientId),
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    present: (p) => { prompt = p },
    now: clock.read,
    sleep: clock.sleep
  })
  assert.ok(tokens.accessToken.length > 0)
  const polls = op.tokenRequests.filter((r) => r.form.get('grant_type') === DEVICE_CODE_GRANT)
  assert.deepEqual(polls.map((p) => p.error ?? p.status), ['authorization_pending', 'slow_down', 'authorization_pending', 'authorization_pending', 200])
  assert.deepEqual(clock.sleeps, [2000, 2000, 7000, 7000, 7000], 'one slow_down: 2 s, then 7 s for good')
})
