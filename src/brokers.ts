import type { Logger } from 'pino'
import { TokenBroker, type BrokerOptions, type Scheduler } from './auth/broker.js'
import type { DpopProver } from './auth/dpop.js'
import { authFingerprint, FileTokenStore } from './auth/file-token-store.js'
import type { RedisLease, StoreOperation } from './auth/redis-token-store.js'
import { RequestBudgets } from './auth/request-budget.js'
import type { TokenFormat } from './auth/token-source.js'
import type { TokenStore } from './auth/token-store.js'
import type { Config, RouteConfig } from './config/schema.js'
import { ConfigError } from './config-error.js'
import { createScheme } from './schemes/registry.js'

/**
 * Brokers and their store, built from a validated config: what `serve`
 * wraps in the HTTP app, and all that `token` and `check` need, so they load
 * no HTTP server, proxy or metrics code.
 */

export interface BuildBrokerOptions {
  logger: Logger
  store?: TokenStore
  /** Wall clock for the brokers (tests). */
  now?: () => number
  /** Renewal timers for the brokers (tests, with `now`). */
  timers?: Scheduler
}

/** Where token and store events are counted (the admin port's metrics). */
export interface BrokerTelemetry {
  tokenRequest: (route: string, outcome: Parameters<NonNullable<BrokerOptions['onTokenRequest']>>[0]) => void
  storeError: (operation: StoreOperation) => void
}

/** What a config being replaced hands on: unchanged routes keep their brokers, budgets and Redis connection. */
export interface PreviousBrokers {
  brokers: Map<string, TokenBroker>
  formats: Map<string, TokenFormat>
  /** The DPoP key of each route whose tokens are bound to one: a kept broker's tokens need it. */
  dpop: Map<string, DpopProver>
  fingerprints: Map<string, string>
  budgets: RequestBudgets
  redis: RedisLease | undefined
}

export function brokerFingerprint (config: Config, route: RouteConfig): string {
  // The store (its dir or URL, and key) is part of it: a kept broker keeps the store it was built with.
  return authFingerprint({ auth: route.auth, tokens: config.tokens, store: config.store ?? null, stateKey: config.stateKey ?? null })
}

/**
 * Whether a route's tokens go to the config's store. Tokens bound to a DPoP key
 * that lives only in this process are useless to any other (and to the next
 * start): they stay in memory. A configured key lets them be persisted and shared.
 */
export function sharesTokens (dpop: DpopProver | undefined): boolean {
  return dpop?.ephemeral !== true
}

/**
 * The config's store. A Redis store uses one connection per process: the
 * previous app's, when a reload leaves the store's URL and prefix as they were.
 */
async function createStore (config: Config, options: BuildBrokerOptions & { previous?: PreviousBrokers | undefined }, metrics?: BrokerTelemetry): Promise<{ store: TokenStore | undefined, redis: RedisLease | undefined }> {
  if (options.store !== undefined || config.store === undefined) return { store: options.store, redis: undefined }
  const settings = new Map<string, unknown>(config.routes.map((r) => [r.name, r.auth]))
  if (config.store.type === 'file') {
    return { store: new FileTokenStore({ dir: config.store.dir, key: config.stateKey, logger: options.logger, settings }), redis: undefined }
  }
  // ioredis is loaded only for a Redis store: `token` on a file or memory store starts without it.
  const { RedisConnection, RedisTokenStore } = await import('./auth/redis-token-store.js')
  const previous = options.previous?.redis?.connection
  const connection = previous?.serves(config.store) === true
    ? previous
    : new RedisConnection({ store: config.store, logger: options.logger, ...(metrics === undefined ? {} : { onError: (operation) => metrics.storeError(operation) }) })
  const redis = connection.acquire()
  return { store: new RedisTokenStore({ connection, settings, key: config.stateKey, logger: options.logger }), redis }
}

/**
 * One broker per route; scheme problems found here (unreadable keys) are
 * config errors. `redis`, when the store is Redis, is this caller's use of
 * the connection: release it when done with the brokers.
 */
export async function createBrokers (config: Config, options: BuildBrokerOptions & { previous?: PreviousBrokers | undefined }, metrics?: BrokerTelemetry): Promise<{ brokers: Map<string, TokenBroker>, formats: Map<string, TokenFormat>, dpop: Map<string, DpopProver>, budgets: RequestBudgets, store: TokenStore | undefined, redis: RedisLease | undefined }> {
  const { store, redis } = await createStore(config, options, metrics)
  // Budgets outlive a reload (unless the limit changed), so reloading cannot reset the count.
  const previousBudgets = options.previous?.budgets
  const budgets = previousBudgets?.limit === config.tokens.maxRequestsPerMinute ? previousBudgets : new RequestBudgets(config.tokens.maxRequestsPerMinute)
  const brokers = new Map<string, TokenBroker>()
  const formats = new Map<string, TokenFormat>()
  const dpop = new Map<string, DpopProver>()
  const issues: string[] = []
  for (const route of config.routes) {
    const previous = options.previous?.fingerprints.get(route.name) === brokerFingerprint(config, route) ? options.previous : undefined
    const kept = previous?.brokers.get(route.name)
    const keptFormat = previous?.formats.get(route.name)
    if (kept !== undefined && keptFormat !== undefined) {
      brokers.set(route.name, kept)
      formats.set(route.name, keptFormat)
      const keptKey = previous?.dpop.get(route.name)
      if (keptKey !== undefined) dpop.set(route.name, keptKey)
      continue
    }
    try {
      const parts = createScheme(route.auth, { where: `routes.${route.name}.auth`, referenced: route.referencedSecrets, files: route.secretFiles })
      const { source, format } = parts
      formats.set(route.name, format)
      if (parts.dpop !== undefined) dpop.set(route.name, parts.dpop)
      const storeFor = sharesTokens(parts.dpop) ? store : undefined
      if (store !== undefined && storeFor === undefined) {
        options.logger.warn({ event: 'dpop_key_ephemeral', route: route.name }, `routes.${route.name}.auth.dpop has no key: its tokens are bound to a key made at start, so they are kept in memory, not in the store (give dpop.key to persist and share them)`)
      }
      brokers.set(route.name, new TokenBroker({
        name: route.name,
        source,
        settings: config.tokens,
        logger: options.logger.child({ route: route.name }),
        ...(source.endpoint === undefined ? {} : { budget: budgets.for(source.endpoint) }),
        ...('timeout' in route.auth ? { tokenTimeoutMs: route.auth.timeout } : {}),
        ...(storeFor === undefined ? {} : { store: storeFor }),
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.timers === undefined ? {} : { timers: options.timers }),
        ...(metrics === undefined ? {} : { onTokenRequest: (outcome) => metrics.tokenRequest(route.name, outcome) })
      }))
    } catch (err) {
      issues.push((err as Error).message)
    }
  }
  if (issues.length > 0) {
    redis?.release().catch(() => {})
    throw new ConfigError(issues)
  }
  return { brokers, formats, dpop, budgets, store, redis }
}
