import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { fingerprint } from '../auth/redaction.js'
import { addressText, isSocketAddress, type Config, type RouteConfig } from '../config/schema.js'
import { HostNotAllowedError, OriginNotAllowedError, RouteNotFoundError } from '../errors.js'
import { sendError } from '../proxy/error-reply.js'
import { allowedHosts, hostAllowed, isIpLiteralHost, isLoopbackHost } from '../proxy/guards.js'
import { noSchemas } from '../proxy/no-schemas.js'
import type { RouteActivity } from '../telemetry/activity.js'
import type { AdminSource, RouteToken } from './source.js'

/** /readyz waits at most this long for a route's first token. */
const READY_WAIT_MS = 5000

/**
 * Headers of every admin answer. The status page runs only its own script and
 * style, fetches only its own origin and cannot be framed; nothing is cached
 * (route status changes by the second) and no Referer leaves it.
 */
const ADMIN_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

/** The status page's files (src/admin/page, copied to dist by the build): read once, served from memory. */
const PAGE_FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/status.js': { file: 'status.js', type: 'text/javascript; charset=utf-8' },
  '/status.css': { file: 'status.css', type: 'text/css; charset=utf-8' }
} as const

export interface RouteView {
  name: string
  prefix: string
  upstream: string
  auth: string
  state: string
  expiresAt: string | null
  expiresIn: number | null
  lastRefresh: string | null
  lastError: string | null
  lastErrorAt: string | null
  /** 8 hex digits of an HMAC of the token under a per-process random key: tells tokens apart, reveals nothing. */
  fingerprint: string | null
  /** Counts since the process started, and over the last few minutes. */
  requests: RouteActivity['requests']
  tokenRequests: RouteActivity['tokenRequests']
  /** Where the route's token is shared: `ok`, `unreachable` (a Redis outage: it renews on its own), or `none` (memory only, or a static key). */
  store: 'ok' | 'unreachable' | 'none'
}

/**
 * The admin listener (SPEC "Admin port"): health, readiness, Prometheus
 * metrics and route status. Separate from the proxy port so it can be bound,
 * scraped and firewalled on its own; it never shows a token or a secret.
 */
export async function buildAdminApp (current: () => AdminSource, logger: Logger, now: () => number = Date.now): Promise<FastifyInstance> {
  const admin = Fastify({
    loggerInstance: logger.child({ component: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // A request without Host gets the JSON HOST_NOT_ALLOWED below, not Node's bare 400.
    http: { requireHostHeader: false },
    schemaController: noSchemas
  })
  const { config } = current()
  if (config.admin !== false && !isSocketAddress(config.admin) && !isLoopbackHost(config.admin.host)) {
    const address = addressText(config.admin)
    logger.warn({ event: 'exposed', listener: 'admin', address }, `admin port on ${address}: anyone who can reach it can read route status and metrics and make the proxy request tokens (/readyz)`)
  }
  registerAdminGuard(admin, () => current().config)
  admin.addHook('onSend', async (_request, reply) => { reply.headers(ADMIN_HEADERS) })
  admin.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, error))

  for (const [path, { file, type }] of Object.entries(PAGE_FILES)) {
    const content = readFileSync(new URL(`./page/${file}`, import.meta.url))
    admin.get(path, async (_request, reply) => reply.type(type).send(content))
  }
  // Browsers ask for it on their own: an empty answer rather than a 404 in the page's console.
  admin.get('/favicon.ico', async (_request, reply) => reply.code(204).send())

  admin.get('/healthz', async () => ({ status: 'ok' }))

  admin.get('/readyz', async (_request, reply) => {
    const routes: Record<string, { ready: boolean, error?: string }> = {}
    const proxy = current()
    await Promise.all(proxy.config.routes.map(async ({ name, readyWithoutLogin }) => {
      const token = proxy.routeToken(name) as RouteToken
      const result = await readiness(token)
      // The route's own choice: a user-login route waiting for its login does not hold the whole proxy back.
      routes[name] = !result.ready && readyWithoutLogin && token.status().state === 'login_required' ? { ...result, ready: true } : result
    }))
    const ready = Object.values(routes).every((r) => r.ready)
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', routes })
  })

  admin.get('/metrics', async (_request, reply) => {
    const { contentType, text } = await current().metricsText()
    return reply.header('content-type', contentType).send(text)
  })

  admin.get('/routes', async () => {
    const proxy = current()
    return { routes: proxy.config.routes.map((route) => routeView(proxy, route, now())) }
  })

  // Actions: the guard above refuses them from another Host and from any cross-site browser
  // request, so only curl, scripts and the status page itself (same origin) reach them.
  admin.post<{ Params: { name: string } }>('/routes/:name/renew', async (request) => {
    const proxy = current()
    const { route, token } = routeOf(proxy, request.params.name)
    request.log.info({ event: 'renew_requested', route: route.name }, 'token renewal asked for on the admin port')
    await token.renew()
    return { route: routeView(proxy, route, now()) }
  })

  admin.delete<{ Params: { name: string } }>('/routes/:name/token', async (request) => {
    const proxy = current()
    const { route, token } = routeOf(proxy, request.params.name)
    request.log.info({ event: 'forget_requested', route: route.name }, 'token forgetting asked for on the admin port')
    await token.forget()
    return { route: routeView(proxy, route, now()) }
  })

  await admin.ready()
  return admin
}

/**
 * One guard in front of every admin request, present and future (SPEC "Admin
 * port"), so no route can forget it:
 * - Host: the proxy port's allow-list (DNS rebinding: a hostile page whose
 *   name now resolves to 127.0.0.1 could read /routes and /metrics), plus
 *   `admin.host`, plus any IP literal, which a rebound name cannot produce
 *   (container probes and scrapers use the pod's address);
 * - browsers: any cross-site or same-site request (another port of localhost
 *   is another site's page too) is refused, reads included. /readyz acts (it
 *   requests tokens) and an `<img src>` needs no CORS to make it act; a page
 *   of another origin has no business reading /routes or /metrics either, and
 *   probes, scrapers and curl send neither Origin nor Sec-Fetch-Site. A person
 *   opening the admin's own URL (typed, bookmarked: `Sec-Fetch-Site: none`) and
 *   the admin's own pages (same origin) pass.
 * No CORS header is ever set: the admin grants no access to other origins.
 */
function registerAdminGuard (admin: FastifyInstance, config: () => Config): void {
  const hostsOf = new WeakMap<Config, Set<string>>()
  admin.addHook('onRequest', (request, _reply, done) => {
    const current = config()
    let hosts = hostsOf.get(current)
    if (hosts === undefined) {
      hosts = allowedHosts(current, current.admin === false ? undefined : current.admin.host)
      hostsOf.set(current, hosts)
    }
    const host = request.headers.host
    if (host === undefined || !(hostAllowed(host, hosts) || isIpLiteralHost(host))) return done(new HostNotAllowedError(JSON.stringify(host ?? '')))
    const origin = request.headers.origin
    const site = request.headers['sec-fetch-site']
    if (site === 'cross-site' || site === 'same-site' || (origin !== undefined && !isOwnOrigin(origin, host))) {
      return done(new OriginNotAllowedError(JSON.stringify(origin ?? `(${site as string} request)`)))
    }
    done()
  })
}

/** The admin's own origin is http:// plus the Host it was reached by (already checked above). */
function isOwnOrigin (origin: string, host: string): boolean {
  try {
    return new URL(`http://${host}`).origin === origin.toLowerCase()
  } catch {
    return false
  }
}

/** A route is ready when it can serve a token now; asking also warms a cold route. */
async function readiness (token: RouteToken): Promise<{ ready: boolean, error?: string }> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      token.ready(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no token within ${READY_WAIT_MS} ms`)), READY_WAIT_MS) })
    ])
    return { ready: true }
  } catch (err) {
    return { ready: false, error: (err as Error).message }
  } finally {
    clearTimeout(timer)
  }
}

/** The route and its token, or 404 ROUTE_NOT_FOUND naming the routes there are. */
function routeOf (proxy: AdminSource, name: string): { route: RouteConfig, token: RouteToken } {
  const route = proxy.config.routes.find((r) => r.name === name)
  const token = proxy.routeToken(name)
  if (route === undefined || token === undefined) throw new RouteNotFoundError(JSON.stringify(name), proxy.config.routes.map((r) => r.name).join(', '))
  return { route, token }
}

function routeView (proxy: AdminSource, route: RouteConfig, now: number): RouteView {
  const token = proxy.routeToken(route.name) as RouteToken
  const status = token.status()
  const finite = status.expiresAt !== undefined && Number.isFinite(status.expiresAt)
  return {
    name: route.name,
    prefix: route.prefix,
    upstream: route.upstream,
    auth: route.auth.type,
    state: status.state,
    expiresAt: finite ? new Date(status.expiresAt as number).toISOString() : null,
    expiresIn: finite ? Math.round(((status.expiresAt as number) - now) / 1000) : null,
    lastRefresh: status.lastRefreshAt === undefined ? null : new Date(status.lastRefreshAt).toISOString(),
    lastError: status.lastError ?? null,
    lastErrorAt: status.lastErrorAt === undefined ? null : new Date(status.lastErrorAt).toISOString(),
    fingerprint: status.token === undefined ? null : fingerprint(status.token.accessToken),
    ...proxy.activity(route.name),
    store: token.store()
  }
}
