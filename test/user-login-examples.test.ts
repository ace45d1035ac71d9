import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import type { DevicePrompt } from '../src/auth/device-code-login.js'
import { createBrokers } from '../src/brokers.js'
import { loadConfigFile } from '../src/config/load.js'
import { tempDir } from './cli-helpers.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser } from './login-helpers.js'

const example = (file: string): string => fileURLToPath(new URL(`../config/examples/${file}`, import.meta.url))

for (const file of ['authorization-code.yaml', 'device-code.yaml']) {
  test(`examples/${file}: the login it describes works against an OpenID provider found by its issuer`, async (t) => {
    const op = await startLoginProvider({ deviceInterval: 1 })
    t.after(() => op.close())
    const config = loadConfigFile(example(file), { OIDC_API_URL: 'http://127.0.0.1:9', OIDC_ISSUER_URL: op.issuer, OIDC_CLIENT_ID: op.clients.public.clientId })
    // The example's ./state, moved to a temporary folder.
    const { brokers } = await createBrokers({ ...config, store: { type: 'file', dir: tempDir(t) } }, { logger: pino({ level: 'silent' }) })
    const broker = brokers.get('api') ?? assert.fail('route api')
    t.after(() => broker.close())
    await assert.rejects(broker.tokenOnce(), /run `bearer-proxy login api`/)
    const login = broker.source.login ?? assert.fail('a user login')
    const walk = (url: string): void => { new Browser().walk(url).catch(() => {}) }
    const tokens = await login({ openUrl: walk, showCode: (p: DevicePrompt) => walk(p.verificationUriComplete ?? '') }, AbortSignal.timeout(30_000))
    await broker.storeLogin(tokens)
    const token = await broker.tokenOnce()
    assert.ok(token.refreshToken !== undefined)
    assert.deepEqual(op.serverErrors(), [])
  })
}
