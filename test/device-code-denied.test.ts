import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientSecretPost, publicClient } from '../src/auth/client-auth.js'
import { deviceCodeLogin, type DevicePrompt } from '../src/auth/device-code-login.js'
import { LoginError } from '../src/auth/login-error.js'
import { DEVICE_CODE_GRANT, startLoginProvider } from './fixtures/oidc-login-provider.js'
import { sendJson, tokenServer } from './helpers.js'
import { Browser, FakeClock, tokenClient } from './login-helpers.js'

test('the person refuses on the verification page: access_denied ends the login', async (t) => {
  const op = await startLoginProvider({ deviceInterval: 1 })
  t.after(() => op.close())
  const clock = new FakeClock()
  let prompt: DevicePrompt | undefined
  clock.onSleep = async (n) => { if (n === 1) await new Browser().walk(prompt?.verificationUriComplete ?? '', { abort: true }) }
  await assert.rejects(deviceCodeLogin({
    deviceAuthorizationUrl: op.deviceAuthorizationUrl,
    authenticate: publicClient(op.clients.public.clientId),
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    present: (p) => { prompt = p },
    now: clock.read,
    sleep: clock.sleep
  }), (err: unknown) => err instanceof LoginError && err.reason === 'denied' && err.oauthError === 'access_denied')
  const polls = op.tokenRequests.filter((r) => r.form.get('grant_type') === DEVICE_CODE_GRANT)
  assert.deepEqual(polls.map((p) => p.error), ['access_denied'])
})

test('a device authorization answer with a verification URI that is not http(s) is refused, never shown', async (t) => {
  const server = await tokenServer(t, (_call, _n, res) => {
    sendJson(res, 200, { device_code: 'device-code-value-0123', user_code: 'WDJB-MJHT', verification_uri: 'javascript:alert(1)', expires_in: 30 })
  })
  await assert.rejects(deviceCodeLogin({
    deviceAuthorizationUrl: `${server.url}/device`,
    authenticate: publicClient('cli'),
    grant: async () => assert.fail('no poll'),
    present: () => assert.fail('nothing shown'),
    sleep: async () => {}
  }), (err: unknown) => err instanceof LoginError && err.reason === 'invalid_response' && /verification_uri/.test(err.message))
})

test('a refused device authorization request passes the server\'s words on, without the client secret it echoed', async (t) => {
  const clientSecret = 'device-client-secret-0123456789'
  const server = await tokenServer(t, (call, _n, res) => {
    sendJson(res, 401, { error: 'invalid_client', error_description: `unknown client ${call.headers.authorization ?? ''} ${call.body}` })
  })
  await assert.rejects(deviceCodeLogin({
    deviceAuthorizationUrl: `${server.url}/device`,
    authenticate: clientSecretPost('cli', clientSecret),
    grant: async () => assert.fail('no poll'),
    present: () => assert.fail('nothing shown'),
    sleep: async () => {}
  }), (err: unknown) => err instanceof Error && /invalid_client/.test(err.message) && !err.message.includes(clientSecret))
})
