import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { call, tokenOf } from './token-lifecycle-helpers.js'

const SEED = 'rt-seed-CANARY-41c9'
/** Short-lived tokens, so the run spans several renewals. */
const LIFETIME_S = 2
const CLI_RUNS = 10

/**
 * A provider that rotates the refresh token on every use and accepts only the
 * latest (RFC 9700 §4.14.2) turns one refresh token presented twice into a
 * dead route. A running proxy, a second one, and `token` and `check` run
 * beside them on the same stateDir must share each renewal instead.
 */
test('a proxy, a second proxy, `token` and `check` on one stateDir present each rotated refresh token once and every request succeeds', async (t) => {
  const presented: string[] = []
  let latest = SEED
  let issued = 0
  const tokens = await tokenServer(t, (c, _n, res) => {
    const refreshToken = c.form.get('refresh_token') ?? ''
    presented.push(refreshToken)
    if (c.form.get('grant_type') !== 'refresh_token' || refreshToken !== latest) {
      return sendJson(res, 400, { error: 'invalid_grant', error_description: 'refresh token reused or unknown' })
    }
    issued++
    latest = `rt-${issued}`
    sendJson(res, 200, { access_token: `access-${issued}`, token_type: 'Bearer', expires_in: LIFETIME_S, refresh_token: latest })
  })
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const config = {
    stateDir: join(dir, 'state'),
    tokens: { minValidity: 0.5, refreshAhead: 0.5 },
    routes: {
      api: {
        upstream: upstream.url,
        auth: { type: 'refresh_token', tokenUrl: tokens.tokenUrl, clientId: 'rt-client', clientSecret: 'rt-client-secret-value', refreshToken: SEED, timeout: 5000 }
      }
    }
  }
  const file = join(dir, 'cfg.json')
  writeFileSync(file, JSON.stringify(config))
  const proxies = [await startProxy(t, config), await startProxy(t, config)]

  // Requests to both proxies all along, while the CLI runs beside them.
  const statuses: Array<{ status: number, text: string }> = []
  const stop = new AbortController()
  const traffic = (async () => {
    for (let i = 0; !stop.signal.aborted && i < 10_000; i++) {
      const proxy = proxies[i % 2] as (typeof proxies)[number]
      const res = await call(`${proxy.url}/api/item/${i}`)
      statuses.push({ status: res.status, text: res.text })
      await new Promise((resolve) => setTimeout(resolve, 40))
    }
  })()

  const printed: string[] = []
  try {
    for (let i = 0; i < CLI_RUNS; i++) {
      const result = await runCli(['token', 'api', '-c', file])
      assert.equal(result.code, 0, `token run ${i}: ${result.stderr}`)
      printed.push(result.stdout)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const checked = await runCli(['check', '-c', file])
    assert.equal(checked.code, 0, checked.stdout + checked.stderr)
    assert.match(checked.stdout, /^api\t\/api\trefresh_token\tok\t/)
  } finally {
    stop.abort()
    await traffic
  }

  assert.deepEqual(presented.filter((rt, i) => presented.indexOf(rt) !== i), [], `a refresh token was presented twice: ${presented.join(' ')}`)
  assert.ok(issued >= 3, `several renewals happened (${issued})`)
  assert.ok(statuses.length > 20, `traffic ran (${statuses.length} requests)`)
  assert.deepEqual(statuses.filter((s) => s.status !== 200), [], 'every proxied request succeeded')
  for (const out of printed) assert.match(out, /^access-\d+\n$/, 'token prints one issued access token')
  assert.ok(upstream.requests.every((r) => /^access-\d+$/.test(tokenOf(r) ?? '')))
})
