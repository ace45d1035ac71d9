import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientSecretBasic, publicClient } from '../src/auth/client-auth.js'
import { deviceCodeLogin, type DevicePrompt } from '../src/auth/device-code-login.js'
import { DEVICE_CODE_GRANT, startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser, FakeClock, tokenClient } from './login-helpers.js'

test('device code login: the person is shown the code, polls wait the announced interval while pending, tokens come once approved', async (t) => {
  const op = await startLoginProvider({ deviceInterval: 3 })
  t.after(() => op.close())
  const clock = new FakeClock()
  let prompt: DevicePrompt | undefined
  // The person approves on another device after the third poll.
  clock.onSleep = async (n) => {
    if (n === 4) assert.equal((await new Browser().walk(prompt?.verificationUriComplete ?? '')).status, 200)
  }
  const tokens = await deviceCodeLogin({
    deviceAuthorizationUrl: op.deviceAuthorizationUrl,
    scope: 'openid api:read',
    authenticate: publicClient(op.clients.public.clientId),
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    present: (p) => { prompt = p },
    now: clock.read,
    sleep: clock.sleep
  })
  assert.ok(tokens.accessToken.length > 0)
  assert.ok(tokens.refreshToken !== undefined)

  assert.ok(prompt !== undefined)
  assert.equal(prompt.verificationUri, `${op.issuer}/device`)
  assert.match(prompt.userCode, /^[A-Z]{4}-[A-Z]{4}$/)
  assert.ok(prompt.verificationUriComplete?.startsWith(`${op.issuer}/device?user_code=`))
  assert.equal(prompt.expiresIn, 600)

  const [request] = op.deviceRequests
  assert.equal(request?.form.get('client_id'), op.clients.public.clientId)
  assert.equal(request?.form.get('scope'), 'openid api:read')
  const polls = op.tokenRequests.filter((r) => r.form.get('grant_type') === DEVICE_CODE_GRANT)
  assert.deepEqual(polls.map((p) => p.error ?? p.status), ['authorization_pending', 'authorization_pending', 'authorization_pending', 200])
  assert.deepEqual(clock.sleeps, [3000, 3000, 3000, 3000], 'every poll waited the interval the server announced')
  assert.deepEqual(op.serverErrors(), [])
})

test('device code login with a confidential client; 5 s between polls when the server names no interval', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  const { clientId, clientSecret } = op.clients.confidential
  const clock = new FakeClock()
  let prompt: DevicePrompt | undefined
  clock.onSleep = async (n) => {
    if (n === 1) await new Browser().walk(prompt?.verificationUriComplete ?? '')
  }
  const tokens = await deviceCodeLogin({
    deviceAuthorizationUrl: op.deviceAuthorizationUrl,
    scope: 'openid',
    authenticate: clientSecretBasic(clientId, clientSecret),
    grant: tokenClient(op.tokenUrl, clientSecretBasic(clientId, clientSecret), [clientSecret]),
    present: (p) => { prompt = p },
    now: clock.read,
    sleep: clock.sleep
  })
  assert.ok(tokens.accessToken.length > 0)
  assert.deepEqual(clock.sleeps, [5000])
  assert.equal(op.deviceRequests[0]?.status, 200)
  assert.equal(op.deviceRequests[0]?.form.get('client_secret'), null)
})
