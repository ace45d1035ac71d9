import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { ProxyApp } from '../app.js'
import type { TokenBroker } from '../auth/broker.js'
import { fingerprint } from '../auth/redaction.js'

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
}

/**
 * The admin listener (SPEC "Admin port"): health, readiness, Prometheus
 * metrics and route status. Separate from the proxy port so it can be bound,
 * scraped and firewalled on its own; it never shows a token or a secret.
 */
export async function buildAdminApp (current: () => ProxyApp, logger: Logger, now: () => number = Date.now): Promise<FastifyInstance> {
  const admin = Fastify({ loggerInstance: logger.child({ component: 'admin' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) })

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
    return { routes: proxy.config.routes.map((route) => routeView(route.name, route.prefix, route.upstream, route.auth.type, proxy.brokers.get(route.name) as TokenBroker, now())) }
  })

  await admin.ready()
  return admin
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

function routeView (name: string, prefix: string, upstream: string, auth: string, broker: TokenBroker, now: number): RouteView {
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
    fingerprint: status.token === undefined ? null : fingerprint(status.token.accessToken)
  }
}
