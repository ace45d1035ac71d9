import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import { METHODS, type ServerOptions } from 'node:http'
import type { AdminSource, RouteToken } from './admin/source.js'
import type { TokenBroker } from './auth/broker.js'
import { tokenCredential } from './auth/credential.js'
import type { DpopProver } from './auth/dpop.js'
import { dpopCredential } from './auth/dpop-credential.js'
import type { RedisLease } from './auth/redis-token-store.js'
import type { RequestBudgets } from './auth/request-budget.js'
import type { TokenFormat } from './auth/token-source.js'
import type { StoreHealth } from './auth/token-store.js'
import { brokerFingerprint, createBrokers, sharesTokens, type BuildBrokerOptions } from './brokers.js'
import { cleartextUrls } from './config/cleartext.js'
import { addressText, type Config } from './config/schema.js'
import { BadRequestError, RouteNotFoundError } from './errors.js'
import { sendError } from './proxy/error-reply.js'
import { clientErrorHandler } from './proxy/client-errors.js'
import { exposedWithoutProtection, registerGuards } from './proxy/guards.js'
import { noSchemas } from './proxy/no-schemas.js'
import { requestEnded } from './proxy/request-log.js'
import { attachRequestState } from './proxy/request-state.js'
import { registerRoute } from './proxy/route.js'
import { routeTransport, type RouteTransport } from './proxy/transport.js'
import { pathOf } from './proxy/upstream.js'
import { WebsocketUpgrades, websocketConstraint } from './proxy/websocket.js'
import { Metrics, type TokenExpiry } from './telemetry/metrics.js'

const HEADERS_TIMEOUT_MS = 10_000
/** The methods whose bodies fastify parses by default (QUERY where this Node's parser knows it). */
const FASTIFY_BODY_METHODS = ['DELETE', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY'].filter((m) => METHODS.includes(m))

export interface AppOptions extends BuildBrokerOptions {
  /** Shared across reloads, so counters survive them. */
  metrics?: Metrics
  /** The app this one replaces: routes whose auth is unchanged keep its brokers and tokens. */
  previous?: ProxyApp
}

/**
 * One config served: its fastify app, and per route the broker and upstream
 * transport it was built with. This module is the composition root: it alone
 * builds them, keeps the unchanged ones of the app it replaces, and closes them.
 * The admin listener reads it as an AdminSource.
 */
export interface ProxyApp extends AdminSource {
  app: FastifyInstance
  config: Config
  brokers: Map<string, TokenBroker>
  /** How each route's token is sent. */
  formats: Map<string, TokenFormat>
  /** The DPoP key of each route whose tokens are bound to one. */
  dpop: Map<string, DpopProver>
  /** Per route, a hash of what its broker depends on (auth config, token settings). */
  fingerprints: Map<string, string>
  /** Token request budgets per endpoint, handed on to the next app at a reload. */
  budgets: RequestBudgets
  metrics: Metrics
  /** Its use of the process's Redis connection (handed on to the next app at a reload when the store is unchanged). */
  redis: RedisLease | undefined
  /** For /routes: `none` when tokens live in memory only. */
  storeHealth (): StoreHealth | 'none'
  /**
   * From now on, requests still in flight are being cut by the shutdown: each is logged as cut
   * (`cut: "shutdown"`), never as its client leaving or its upstream failing.
   */
  cutInFlight (): void
  /** Its websocket upgrades and open sessions. */
  upgrades: WebsocketUpgrades
  /** No token renewal starts from now on (a shutdown's grace): requests in flight keep the tokens they have. */
  retire (): void
  /**
   * Retires this app for `next`, built from it (`previous`): the brokers
   * `next` does not keep stop renewing at once (one must never spend a
   * refresh token its successor holds) and are closed once this app has
   * finished its requests in flight; the Redis connection is closed unless
   * `next` holds it too. Its websocket sessions run on until the shutdown.
   */
  handOver (next: ProxyApp): Promise<void>
  /** Closes the fastify app, every broker and its use of the store; `force` cuts pending upstream requests instead of waiting (and implies cutInFlight). */
  close (options?: { force?: boolean }): Promise<void>
}

/** An idle keep-alive connection is closed this long after its last answer (Node's default, stated). */
const KEEP_ALIVE_TIMEOUT_MS = 5000

/**
 * Settings of the listening HTTP server, shared by every way of listening.
 * There is no idle timer on a connection while a request is in hand: Node
 * refreshes such a timer on every read and write, which cost a fifth of the
 * CPU of a 1 MiB answer. Instead: an upstream that stalls is cut by the
 * route's `timeout` (504); a client that stops sending its body or stops
 * reading its answer for that long, by one shared check of socket byte
 * counts (proxy/exchange-watch.ts); a token request by its own timeout; and
 * silence after an answer by the keep-alive timeout.
 */
export function serverSettings (): ServerOptions {
  return {
    // Slow-loris: the headers must arrive within 10 s, checked every second (Node's default is every 30 s).
    headersTimeout: HEADERS_TIMEOUT_MS,
    connectionsCheckingInterval: 1000,
    // Uploads may take as long as they take, as long as they keep moving (see above).
    requestTimeout: 0,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // A request without Host gets the proxy's own HOST_NOT_ALLOWED JSON, not Node's bare 400.
    requireHostHeader: false
  }
}

/** Builds the proxy (routes, error handling, request log) without listening. */
export async function buildApp (config: Config, options: AppOptions): Promise<ProxyApp> {
  const metrics = options.metrics ?? await Metrics.exported(options.now)
  const created = await createBrokers(config, options, metrics)
  const { brokers } = created
  const inherited = new Set(options.previous?.brokers.values())
  const added = [...brokers.values()].filter((b) => !inherited.has(b))
  try {
    await Promise.all(added.map((b) => b.init()))
  } catch (err) {
    // The brokers of the app this one was to replace serve on; only the new ones go.
    for (const broker of added) broker.close()
    await created.redis?.release()
    throw err
  }
  const storeHealth = (): StoreHealth | 'none' => created.store === undefined ? 'none' : created.store.health?.() ?? 'ok'
  const routeTokens = new Map(config.routes.map((r) => [r.name, routeToken(brokers.get(r.name) as TokenBroker, sharesTokens(created.dpop.get(r.name)) ? storeHealth : () => 'none')]))
  const fingerprints = new Map(config.routes.map((r) => [r.name, brokerFingerprint(config, r)]))
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // One line per request of our own (onResponse below) instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Bodies stream to the upstream; the proxy itself never holds more than a replayable 1 MiB.
    bodyLimit: Number.MAX_SAFE_INTEGER,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    http: serverSettings(),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    clientErrorHandler,
    routerOptions: { constraints: { upgrade: websocketConstraint as never } },
    schemaController: noSchemas,
    // Bad URLs (malformed percent-encoding) get the proxy's JSON error shape too.
    frameworkErrors: (error, request, reply) => sendError(request, reply, new BadRequestError(error.message, { cause: error }))
  })
  // Fastify reads no body: the route's handler takes it as it comes (proxy/body.ts). Fastify would
  // skip the body of a GET (which Elasticsearch-style APIs use), and parse JSON or refuse a media
  // type it cannot read before knowing whether any route matches (a 400 or 415 instead of 404).
  for (const method of FASTIFY_BODY_METHODS) app.addHttpMethod(method, { hasBody: false, overrideExisting: true })
  if (exposedWithoutProtection(config)) {
    const address = addressText(config.listen)
    options.logger.warn({ event: 'exposed', address }, `listening on ${address} without security.clientKey: anyone who can reach this address can use its credentials (security.allowedHosts is no access control: a Host header is the client's choice)`)
  }
  for (const { route, key, origin } of cleartextUrls(config)) {
    options.logger.warn({ event: 'cleartext', route, key, origin }, `routes.${route}.${key} is plain http to ${origin}, beyond this machine: credentials and tokens cross the network unencrypted`)
  }
  registerGuards(app, config)
  const shutdownCut = attachRequestState(app)

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, error))
  const prefixes = config.routes.map((r) => r.prefix).sort()
  app.setNotFoundHandler((request, reply) => {
    sendError(request, reply, new RouteNotFoundError(pathOf(request.url), prefixes.join(', ')))
  })
  app.addHook('onResponse', (request, reply, done) => {
    requestEnded(request, reply, metrics)
    done()
  })

  const upgrades = new WebsocketUpgrades(app)
  const transports: RouteTransport[] = []
  for (const route of config.routes) {
    const transport = routeTransport(route.tls)
    transports.push(transport)
    const broker = brokers.get(route.name) as TokenBroker
    const dpop = created.dpop.get(route.name)
    const credential = dpop === undefined
      ? tokenCredential(broker, created.formats.get(route.name) as TokenFormat, route.retryOn)
      : dpopCredential(broker, dpop, route.retryOn)
    registerRoute(app, { route, credential, transport, metrics, upgrades })
  }
  // Closing waits for in-flight upstream requests (undici's close is graceful), unless forced:
  // past the shutdown grace, upstream requests still pending are cut.
  let force = false
  app.addHook('onClose', async () => {
    await Promise.all(transports.map((t) => t.close(force)))
  })
  await app.ready()
  // The expiry gauge follows the routes built last: at a reload, this app's, which is about to serve.
  metrics.watchTokenExpiries(() => tokenExpiries(brokers))
  return {
    app,
    config,
    brokers,
    formats: created.formats,
    dpop: created.dpop,
    fingerprints,
    budgets: created.budgets,
    metrics,
    redis: created.redis,
    storeHealth,
    routeToken: (name) => routeTokens.get(name),
    activity: (route) => metrics.activity(route),
    metricsText: async () => await metrics.text(),
    cutInFlight: () => { shutdownCut.active = true },
    upgrades,
    retire: () => {
      for (const broker of brokers.values()) broker.retire()
    },
    handOver: async (next) => {
      const kept = new Set(next.brokers.values())
      for (const broker of brokers.values()) if (!kept.has(broker)) broker.retire()
      // The app finishes what it has in flight (its upstream agents close gracefully).
      await app.close()
      for (const broker of brokers.values()) if (!kept.has(broker)) broker.close()
      // Closes the Redis connection unless the next app uses the same store (then it holds it too).
      await created.redis?.release()
    },
    close: async (options = {}) => {
      force = options.force === true
      if (force) shutdownCut.active = true
      // Websocket sessions end with the proxy (1001), not with a reload: a reload retires the old
      // app with handOver, and its sessions run on until either side closes them.
      upgrades.close(force)
      for (const broker of brokers.values()) broker.retire()
      await app.close()
      for (const broker of brokers.values()) broker.close()
      await created.redis?.release()
    }
  }
}

/** A route's broker as the admin port shows and drives it; `storeHealth`: of the store its tokens go to (`none`: memory only). */
function routeToken (broker: TokenBroker, storeHealth: () => StoreHealth | 'none'): RouteToken {
  return {
    status: () => broker.status(),
    // A static key is config, never stored.
    store: () => broker.renewable ? storeHealth() : 'none',
    ready: async () => { await broker.token() },
    renew: async () => { await broker.renewNow() },
    forget: () => broker.forget()
  }
}

function * tokenExpiries (brokers: Map<string, TokenBroker>): Iterable<TokenExpiry> {
  for (const broker of brokers.values()) yield { route: broker.name, expiresAt: broker.status().expiresAt }
}
