import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'

/** A raw request with the Host header chosen (fetch would set its own). */
function rawGet (port: number, path: string, host: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host }, timeout: 10_000 }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

test('stray requests to the loopback listener (favicon, other paths, a bare /callback, another Host) get 404 and the login goes on', async () => {
  let exchanged: Record<string, string> | undefined
  const statuses: Record<string, number> = {}
  let person: Promise<void> | undefined
  const tokens = await authorizationCodeLogin({
    authorizationUrl: 'http://127.0.0.1:9/authorize',
    clientId: 'cli',
    // What present() does is the test's: its own failures would not end the login, so they are recorded and checked after.
    present: (url) => {
      person = (async () => {
        const sent = new URL(url).searchParams
        const port = Number(new URL(sent.get('redirect_uri') ?? '').port)
        const host = `127.0.0.1:${port}`
        const query = `?state=${sent.get('state') ?? ''}&code=real-code-0123456789`
        statuses.favicon = await rawGet(port, '/favicon.ico', host)
        statuses.root = await rawGet(port, '/', host)
        statuses.bare = await rawGet(port, '/callback', host)
        statuses.otherPath = await rawGet(port, `/callback/x${query}`, host)
        statuses.post = await rawGet(port, `/callback${query}`, host, 'POST')
        // DNS rebinding: a page under another name that reached this port cannot answer for the browser.
        statuses.foreignHost = await rawGet(port, `/callback${query}`, `attacker.example:${port}`)
        statuses.localhostName = await rawGet(port, `/callback${query}`, `localhost:${port}`)
        // Then the real redirect.
        statuses.callback = await rawGet(port, `/callback${query}`, host)
      })()
    },
    grant: async (params) => { exchanged = params; return { accessToken: 'access-token-value' } },
    timeoutMs: 30_000
  })
  await person
  assert.deepEqual(statuses, { favicon: 404, root: 404, bare: 404, otherPath: 404, post: 404, foreignHost: 404, localhostName: 404, callback: 200 })
  assert.equal(tokens.accessToken, 'access-token-value')
  assert.equal(exchanged?.code, 'real-code-0123456789')
  assert.equal(exchanged?.grant_type, 'authorization_code')
})
