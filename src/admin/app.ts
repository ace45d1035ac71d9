import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { ProxyApp } from '../app.js'
import type { TokenBroker } from '../auth/broker.js'
import { fingerprint } from '../auth/redaction.js'
import { addressText, isSocketAddress, type Config } from '../config/schema.js'
import { HostNotAllowedError, OriginNotAllowedError } from '../errors.js'
import { sendError } from '../proxy/error-reply.js'
import { allowedHosts, hostAllowed, isIpLiteralHost, isLoopbackHost } from '../proxy/guards.js'

/** /readyz waits at most this long for a route's first token. */
const READY_WAIT_MS = 5000

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
  /** 8 hex digits of an HMAC of the token under a per-process random key: tells tokens apart, reveals nothing. */
  fingerprint: string | null
  /** Where the route's token is shared: `ok`, `unreachable` (a Redis outage: it renews on its own), or `none` (memory only, or a static key). */
  store: 'ok' | 'unreachable' | 'none'
}

/**
 * The admin listener (SPEC "Admin port"): health, readiness, Prometheus
 * metrics and route status. Separate from the proxy port so it can be bound,
 * scraped and firewalled on its own; it never shows a token or a secret.
 */
export async function buildAdminApp (current: () => ProxyApp, logger: Logger, now: () => number = Date.now): Promise<FastifyInstance> {
  const admin = Fastify({
    loggerInstance: logger.child({ component: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // A request without Host gets the JSON HOST_NOT_ALLOWED below, not Node's bare 400.
    http: { requireHostHeader: false }
  })
  const { config } = current()
  if (config.admin !== false && !isSocketAddress(config.admin) && !isLoopbackHost(config.admin.host)) {
    const address = addressText(config.admin)
    logger.warn({ event: 'exposed', listener: 'admin', address }, `admin port on ${address}: anyone who can reach it can read route status and metrics and make the proxy request tokens (/readyz)`)
  }
  registerAdminGuard(admin, () => current().config)
  admin.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, error))

  admin.get('/healthz', async () => ({ status: 'ok' }))

  admin.get('/readyz', async (_request, reply) => {
    const routes: Record<string, { ready: boolean, error?: string }> = {}
    await Promise.all([...current().brokers.values()].map(async (broker) => {
      routes[broker.name] = await readiness(broker)
    }))
    const ready = Object.values(routes).every((r) => r.ready)
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', routes })
  })

  admin.get('/metrics', async (_request, reply) => {
    const { registry } = current().metrics
    return reply.header('content-type', registry.contentType).send(await registry.metrics())
  })

  admin.get('/routes', async () => {
    const proxy = current()
    const store = proxy.storeHealth()
    return { routes: proxy.config.routes.map((route) => routeView(route.name, route.prefix, route.upstream, route.auth.type, proxy.brokers.get(route.name) as TokenBroker, now(), store)) }
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
async function readiness (broker: TokenBroker): Promise<{ ready: boolean, error?: string }> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      broker.token(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no token within ${READY_WAIT_MS} ms`)), READY_WAIT_MS) })
    ])
    return { ready: true }
  } catch (err) {
    return { ready: false, error: (err as Error).message }
  } finally {
    clearTimeout(timer)
  }
}

function routeView (name: string, prefix: string, upstream: string, auth: string, broker: TokenBroker, now: number, store: RouteView['store']): RouteView {
  const status = broker.status()
  const finite = status.expiresAt !== undefined && Number.isFinite(status.expiresAt)
  return {
    name,
    prefix,
    upstream,
    auth,
    state: status.state,
    expiresAt: finite ? new Date(status.expiresAt as number).toISOString() : null,
    expiresIn: finite ? Math.round(((status.expiresAt as number) - now) / 1000) : null,
    lastRefresh: status.lastRefreshAt === undefined ? null : new Date(status.lastRefreshAt).toISOString(),
    lastError: status.lastError ?? null,
    fingerprint: status.token === undefined ? null : fingerprint(status.token.accessToken),
    // A static key is config, never stored.
    store: broker.scheme.endpoint === undefined ? 'none' : store
  }
}
