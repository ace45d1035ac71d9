/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { RouteView } from '../src/admin/app.js'
import { ROOT } from './cli-helpers.js'
import { listen, recordingUpstream, sendJson } from './helpers.js'
import { canary, issuingTokenServer, startTestServer } from './operability-helpers.js'
import { rawRequest } from './proxy-http-helpers.js'
import { call } from './token-lifecycle-helpers.js'

/**
 * The admin port's status page in a real browser (Debian's Chromium, driven
 * by playwright-core): what a person sees, that it moves without a reload,
 * that its buttons act once, and that it never loads anything from elsewhere,
 * never shows a secret and breaks none of its own CSP. Screenshots go to
 * test-artifacts/; UPDATE_DOCS_SCREENSHOT=1 also rewrites docs/status-page.png.
 */
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const ARTIFACTS = join(ROOT, 'test-artifacts')
/** Every wait in a page is bounded: a broken page fails the test instead of stalling it. */
const WAIT_MS = 8000
/** A whole test: a browser that stalls fails it instead of holding up the suite. */
const TEST_MS = 60_000

let browser: Browser
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 })
})
after(async () => { await browser?.close() })

async function setup (t: TestContext) {
  const clientSecret = canary('client-secret')
  const tokens = await issuingTokenServer(t)
  // A token endpoint that echoes the secret it was sent: the page must show its error, never the secret.
  const refusing = await issuingTokenServer(t)
  refusing.server.removeAllListeners('request')
  refusing.server.on('request', (req, res) => {
    req.resume()
    req.once('end', () => sendJson(res, 401, { error: 'invalid_client', error_description: `client disabled (secret ${clientSecret})` }))
  })
  const upstream = await recordingUpstream(t)
  const auth = (tokenUrl: string): Record<string, unknown> => ({ type: 'client_credentials', tokenUrl, clientId: 'status-page', clientSecret: '${env:CLIENT_SECRET}' })
  const staticKey = canary('static-key')
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    routes: {
      billing: { upstream: upstream.url, auth: auth(tokens.tokenUrl) },
      partner: { upstream: upstream.url, auth: auth(refusing.tokenUrl) },
      legacy: { upstream: upstream.url, auth: { type: 'static', token: '${env:STATIC_KEY}' } },
      reports: { upstream: upstream.url, auth: auth(tokens.tokenUrl) }
    }
  }, { CLIENT_SECRET: clientSecret, STATIC_KEY: staticKey })
  for (const path of ['/billing/a', '/billing/b', '/partner/a', '/legacy/a']) await call(`${server.url}${path}`)
  const adminUrl = server.adminUrl as string
  const secrets = (): string[] => [clientSecret, staticKey, ...tokens.issued, ...tokens.refreshTokens]
  return { tokens, refusing, server, adminUrl, secrets }
}

interface Watched {
  page: Page
  requests: string[]
  problems: string[]
  bodies: Promise<string>[]
  /** Everything the page received and holds now, for the secret check. */
  received: () => Promise<string>
}

/** A fresh page (UTC, so times can be compared to the second) that records what it loads, logs and breaks. */
async function openPage (t: TestContext, url: string, viewport = { width: 1280, height: 720 }): Promise<Watched> {
  const context = await browser.newContext({ viewport, timezoneId: 'UTC', locale: 'en-GB' })
  t.after(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const watched: Watched = { page, requests: [], problems: [], bodies: [], received: async () => '' }
  // Injected by the browser itself, outside the page's CSP: CSP violations become test failures.
  // Browser-side code is given as text here: this file is type-checked for Node, without the DOM.
  await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))" })
  page.on('request', (r) => watched.requests.push(r.url()))
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') watched.problems.push(`console ${m.type()}: ${m.text()}`) })
  page.on('pageerror', (e) => watched.problems.push(`page error: ${e.message}`))
  page.on('requestfailed', (r) => watched.problems.push(`request failed: ${r.url()}`))
  page.on('response', (r) => { watched.bodies.push(r.text().catch(() => '')) })
  watched.received = async () => [...await Promise.all(watched.bodies), await page.content()].join('\n')
  await page.goto(url)
  return watched
}

function row (page: Page, name: string) {
  return page.locator(`tr[data-route="${name}"]`)
}

function assertClean (w: Watched, adminUrl: string): void {
  const origin = new URL(adminUrl).origin
  for (const url of w.requests) assert.equal(new URL(url).origin, origin, `a request left the admin origin: ${url}`)
  assert.deepEqual(w.problems, [], 'no console error, CSP violation or failed request')
}

async function assertNoSecret (w: Watched, secrets: string[]): Promise<void> {
  const everything = await w.received()
  for (const secret of secrets) assert.ok(!everything.includes(secret), `a secret or token reached the page: ${secret.slice(0, 20)}…`)
}

test('the page and its files: strict CSP, nosniff, no-store, no-referrer, nothing inline or external', { timeout: TEST_MS }, async (t) => {
  const { adminUrl } = await setup(t)
  const sizes: Record<string, number> = {}
  for (const [path, type] of [['/', 'text/html'], ['/status.js', 'text/javascript'], ['/status.css', 'text/css']] as const) {
    const res = await rawRequest(adminUrl, { path })
    assert.equal(res.status, 200, path)
    assert.match(String(res.headers['content-type']), new RegExp(`^${type}`), path)
    assert.equal(res.headers['content-security-policy'], "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
    assert.equal(res.headers['referrer-policy'], 'no-referrer')
    assert.equal(res.headers['cache-control'], 'no-store')
    assert.equal(res.headers['access-control-allow-origin'], undefined)
    const text = res.body.toString()
    assert.doesNotMatch(text, /https?:\/\//, `${path} refers to no other origin`)
    sizes[path] = res.body.length
    if (path === '/') {
      assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)/, 'no inline script')
      assert.doesNotMatch(text, /<style|\sstyle=|\son[a-z]+=/, 'no inline style or handler')
    }
  }
  assert.ok(Object.values(sizes).reduce((a, b) => a + b, 0) < 20_000, `the page stays small: ${JSON.stringify(sizes)}`)
})

test('the page lists every route with its state, moves its countdown without a reload, shows a failing route\'s error, and no secret', { timeout: TEST_MS }, async (t) => {
  const s = await setup(t)
  const w = await openPage(t, `${s.adminUrl}/`)
  const { page } = w
  await page.locator('tr[data-route]').nth(3).waitFor()
  assert.deepEqual(await page.locator('tr[data-route]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-route'))), ['billing', 'partner', 'legacy', 'reports'])
  assert.equal(await row(page, 'billing').locator('.badge').textContent(), 'valid')
  assert.match(await row(page, 'billing').locator('.path').textContent() ?? '', /^\/billing → http:\/\/127\.0\.0\.1:\d+$/)
  assert.equal(await row(page, 'legacy').locator('time.expiry').textContent(), 'never')
  assert.equal(await row(page, 'legacy').locator('td[data-label="Token requests"]').textContent(), '0')
  assert.equal(await row(page, 'reports').locator('.badge').textContent(), 'no token yet')
  assert.match(await row(page, 'billing').locator('td[data-label="Requests"]').textContent() ?? '', /^2 in 5 min2 since start$/)

  // The failing route: its badge, its error and the error's time.
  assert.equal(await row(page, 'partner').locator('.badge').textContent(), 'failing')
  assert.match(await row(page, 'partner').locator('.error').textContent() ?? '', /invalid_client: client disabled/)
  assert.match(await row(page, 'partner').locator('td[data-label="Last error"] time').textContent() ?? '', /^\d\d:\d\d:\d\d$/)
  assert.equal(await row(page, 'partner').locator('td[data-label="Token requests"]').textContent(), '1 (1 failed)')
  assert.match(await page.locator('#summary').textContent() ?? '', /^4 routes: 2 valid, 1 failing, 1 no token yet · updated \d\d:\d\d:\d\d$/)

  // The countdown moves on its own: same document, a smaller number a few seconds later.
  await page.evaluate("document.body.dataset.marker = 'same document'")
  const expiry = row(page, 'billing').locator('time.expiry')
  const seconds = async (): Promise<number> => Number(/^PT(\d+)S$/.exec(await expiry.getAttribute('datetime') ?? '')?.[1])
  const first = await seconds()
  assert.ok(first > 3500 && first <= 3600, `countdown ${first}`)
  assert.match(await expiry.textContent() ?? '', /^59m \d\ds$/)
  // Polled from here: the page's CSP (rightly) refuses the eval a string waitForFunction needs.
  const deadline = Date.now() + WAIT_MS
  while (await seconds() > first - 2) {
    assert.ok(Date.now() < deadline, `the countdown stayed at ${await seconds()} s`)
    await page.waitForTimeout(200)
  }
  assert.ok(await seconds() < first)
  assert.equal(await page.evaluate('document.body.dataset.marker'), 'same document', 'no reload')
  // And it keeps polling.
  await page.waitForRequest((r) => r.url() === `${s.adminUrl}/routes`)

  assert.ok(await page.evaluate('document.documentElement.scrollWidth <= 1280'), 'nothing wider than a laptop screen')
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'status-page-desktop.png'), fullPage: true })
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    await page.setViewportSize({ width: 1200, height: 400 })
    await page.screenshot({ path: join(ROOT, 'docs', 'status-page.png'), fullPage: true })
  }
  await page.setViewportSize({ width: 390, height: 844 })
  assert.equal(await page.locator('thead').evaluate((e) => e.getBoundingClientRect().width), 1, 'on a phone the table header is hidden; each row is a card')
  assert.ok(await page.evaluate('document.documentElement.scrollWidth <= 390'), 'nothing wider than a phone')
  await page.screenshot({ path: join(ARTIFACTS, 'status-page-phone.png'), fullPage: true })

  assertClean(w, s.adminUrl)
  await assertNoSecret(w, s.secrets())
})

test('"Renew now" makes exactly one token request and the page shows the new refresh time', { timeout: TEST_MS }, async (t) => {
  const s = await setup(t)
  const w = await openPage(t, `${s.adminUrl}/`)
  const { page } = w
  const billing = row(page, 'billing')
  await billing.waitFor()
  const refreshed = billing.locator('time.refresh')
  const before = await refreshed.getAttribute('datetime')
  assert.ok(before !== null)
  const calls = s.tokens.calls.length
  await billing.locator('button.renew').click()
  await billing.locator('.message', { hasText: /^Renewed at \d\d:\d\d:\d\d$/ }).waitFor()
  assert.equal(s.tokens.calls.length, calls + 1, 'exactly one token request')

  const route = ((await call(`${s.adminUrl}/routes`)).json.routes as RouteView[]).find((r) => r.name === 'billing') as RouteView
  assert.notEqual(route.lastRefresh, before)
  assert.equal(await refreshed.getAttribute('datetime'), route.lastRefresh)
  assert.equal(await refreshed.textContent(), route.lastRefresh?.slice(11, 19), 'the new refresh time, to the second')
  assert.equal(await billing.locator('td[data-label="Token requests"]').textContent(), '2')
  // A few polls later, still one.
  await page.waitForTimeout(2500)
  assert.equal(s.tokens.calls.length, calls + 1)

  assertClean(w, s.adminUrl)
  await assertNoSecret(w, s.secrets())
})

test('"Forget token" asks first, then the route goes cold; a failed renew shows the error in its row', { timeout: TEST_MS }, async (t) => {
  const s = await setup(t)
  const w = await openPage(t, `${s.adminUrl}/`)
  const { page } = w
  const billing = row(page, 'billing')
  await billing.waitFor()
  const dialogs: string[] = []
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept().catch(() => {}) })
  await billing.locator('button.forget').click()
  await billing.locator('.badge', { hasText: /^cold$/ }).waitFor()
  assert.deepEqual(dialogs, ['Forget the token of billing? Its next request obtains a new one.'])
  assert.equal(await billing.locator('time.expiry').textContent(), '–')

  const partner = row(page, 'partner')
  await partner.locator('button.renew').click()
  await partner.locator('.message.error', { hasText: /client disabled/ }).waitFor()
  assert.equal(await row(page, 'legacy').locator('button.renew').isDisabled(), true, 'a static key has nothing to renew')

  // The refused renewal is a 502 the page asked for and showed: the browser logs it as a failed load, nothing else.
  assert.deepEqual(w.problems.filter((p) => !/status of 502/.test(p)), [])
  w.problems.length = 0
  assertClean(w, s.adminUrl)
  await assertNoSecret(w, s.secrets())
})

test('a page of another local origin can neither renew a token nor read /routes', { timeout: TEST_MS }, async (t) => {
  const s = await setup(t)
  const other = await listen(t, (_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>another app</title>') })
  const w = await openPage(t, `${other.url}/`)
  const statuses: Array<[string, number]> = []
  w.page.on('response', (r) => statuses.push([`${r.request().method()} ${new URL(r.url()).pathname}`, r.status()]))
  const calls = s.tokens.calls.length
  // As text: tsx would wrap a named function of this file in a helper the page does not have.
  const outcome = await w.page.evaluate(`(async (admin) => {
    const attempt = async (url, init) => {
      try {
        const res = await fetch(url, { ...init, signal: AbortSignal.timeout(${WAIT_MS}) })
        return res.type === 'opaque' ? 'opaque' : 'read ' + res.status + ': ' + await res.text()
      } catch (err) {
        return err && err.name === 'TimeoutError' ? 'no answer within ${WAIT_MS} ms' : 'blocked'
      }
    }
    return {
      renew: await attempt(admin + '/routes/billing/renew', { method: 'POST' }),
      renewNoCors: await attempt(admin + '/routes/billing/renew', { method: 'POST', mode: 'no-cors' }),
      // DELETE is no simple request: the browser asks first (a preflight, refused) and never sends it.
      forget: await attempt(admin + '/routes/billing/token', { method: 'DELETE' }),
      routes: await attempt(admin + '/routes')
    }
  })(${JSON.stringify(s.adminUrl)})`)
  assert.deepEqual(outcome, { renew: 'blocked', renewNoCors: 'opaque', forget: 'blocked', routes: 'blocked' })
  // The requests did reach the admin port, which refused them.
  assert.ok(statuses.some(([what, status]) => what === 'POST /routes/billing/renew' && status === 403), JSON.stringify(statuses))
  assert.equal(s.tokens.calls.length, calls, 'no token request')
  const billing = ((await call(`${s.adminUrl}/routes`)).json.routes as RouteView[]).find((r) => r.name === 'billing') as RouteView
  assert.equal(billing.state, 'valid', 'nothing forgotten')
  assert.deepEqual(billing.tokenRequests, { total: 1, failed: 0 })
})
