import assert from 'node:assert/strict'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'
import { LoginError } from '../src/auth/login-error.js'

async function refused (url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(5000) })
    return false
  } catch (err) {
    return (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED'
  }
}

test('no callback in time: the login ends with a clear error and the listener is closed', async () => {
  let redirectUri = ''
  const started = Date.now()
  await assert.rejects(authorizationCodeLogin({
    authorizationUrl: 'http://127.0.0.1:9/authorize',
    clientId: 'cli',
    present: (url) => { redirectUri = new URL(url).searchParams.get('redirect_uri') ?? '' },
    grant: async () => assert.fail('no exchange'),
    timeoutMs: 300
  }), (err: unknown) => err instanceof LoginError && err.reason === 'timeout' && /no login callback within/.test(err.message) && /run login again/.test(err.message))
  assert.ok(Date.now() - started < 20_000)
  assert.ok(await refused(`${redirectUri}?state=s&code=c`), 'nothing listens on the redirect port any more')
})

test('cancelled (Ctrl-C): the login ends at once and the listener is closed', async () => {
  const controller = new AbortController()
  let redirectUri = ''
  await assert.rejects(authorizationCodeLogin({
    authorizationUrl: 'http://127.0.0.1:9/authorize',
    clientId: 'cli',
    present: (url) => {
      redirectUri = new URL(url).searchParams.get('redirect_uri') ?? ''
      setImmediate(() => controller.abort())
    },
    grant: async () => assert.fail('no exchange'),
    timeoutMs: 60_000,
    signal: controller.signal
  }), (err: unknown) => err instanceof LoginError && err.reason === 'aborted')
  assert.ok(await refused(redirectUri))
})

test('present() failing ends the login and closes the listener', async () => {
  let redirectUri = ''
  await assert.rejects(authorizationCodeLogin({
    authorizationUrl: 'http://127.0.0.1:9/authorize',
    clientId: 'cli',
    present: (url) => {
      redirectUri = new URL(url).searchParams.get('redirect_uri') ?? ''
      throw new Error('no terminal')
    },
    grant: async () => assert.fail('no exchange'),
    timeoutMs: 60_000
  }), /no terminal/)
  assert.ok(await refused(redirectUri))
})
