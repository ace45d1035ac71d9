import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { ActivityCounter, type RouteActivity } from './activity.js'

/**
 * Telemetry sits below the token machinery and the proxy, which write to it:
 * the words it counts are its own, and the broker's and store's callbacks
 * match them (checked where the composition root connects them).
 */
export type TokenOutcome = 'obtained' | 'refreshed' | 'rejected' | 'unavailable'
/** A token store operation that failed (a Redis store's; connection attempts count as `connect`). */
export type StoreOperation = 'connect' | 'load' | 'save' | 'delete' | 'lock' | 'unlock' | 'secret'

/** One route's current token expiry, for the expiry gauge; undefined while it has none. */
export interface TokenExpiry {
  route: string
  expiresAt: number | undefined
}

/** Where the expiry gauge reads the routes' tokens at each scrape (the routes being served). */
export type TokenExpirySource = () => Iterable<TokenExpiry>

/** The route label of requests that matched no route: fixed, and no route name can spell it. */
const NO_ROUTE_LABEL = '(none)'

/**
 * The proxy's Prometheus metrics, in a registry of its own (so two proxies in
 * one process, as in tests, never share counters). Labels are route names,
 * methods, status classes and outcome words: never a path, token or secret.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'route' | 'method' | 'status_class'>
  readonly #duration: Histogram<'route'>
  readonly #upstreamErrors: Counter<'route' | 'code'>
  readonly #tokenRequests: Counter<'route' | 'outcome'>
  readonly #replays: Counter<'route'>
  readonly #websocketSessions: Counter<'route'>
  readonly #storeErrors: Counter<'operation'>
  /** Per route, method and status class, the labelled children: prom-client hashes the labels on every call otherwise. */
  readonly #requestChildren = new Map<string, { count: { inc: () => void }, duration: { observe: (value: number) => void }, activity: ActivityCounter | undefined }>()
  readonly #activity = new Map<string, ActivityCounter>()
  readonly #now: () => number
  /** None until the routes are built: until then the gauge has no series. */
  #expiries: TokenExpirySource = () => []

  constructor (now: () => number = Date.now) {
    this.#now = now
    const expiries = (): Iterable<TokenExpiry> => this.#expiries()
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.#requests = new Counter({ name: 'bearer_proxy_requests_total', help: 'Requests answered, by route, method and status class', labelNames: ['route', 'method', 'status_class'], registers })
    this.#duration = new Histogram({ name: 'bearer_proxy_request_duration_seconds', help: 'Time to answer a request, by route', labelNames: ['route'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers })
    this.#upstreamErrors = new Counter({ name: 'bearer_proxy_upstream_errors_total', help: 'Upstream failures answered by the proxy, by route and error code', labelNames: ['route', 'code'], registers })
    this.#tokenRequests = new Counter({ name: 'bearer_proxy_token_requests_total', help: 'Token requests, by route and outcome', labelNames: ['route', 'outcome'], registers })
    this.#replays = new Counter({ name: 'bearer_proxy_replays_total', help: 'Requests replayed with a new token after a retryOn answer', labelNames: ['route'], registers })
    this.#websocketSessions = new Counter({ name: 'bearer_proxy_websocket_sessions_total', help: 'Websocket sessions relayed to their end, by route', labelNames: ['route'], registers })
    this.#storeErrors = new Counter({ name: 'bearer_proxy_store_errors_total', help: 'Token store failures (Redis unreachable, timing out or refusing), by operation; connection attempts count as connect', labelNames: ['operation'], registers })
    const expiry = new Gauge({
      name: 'bearer_proxy_token_expiry_seconds',
      help: 'Seconds until the current token of each route expires (absent while a route has none or it never expires)',
      labelNames: ['route'],
      registers,
      collect () {
        expiry.reset()
        const at = now()
        for (const { route, expiresAt } of expiries()) {
          if (expiresAt !== undefined && Number.isFinite(expiresAt)) expiry.set({ route }, Math.round((expiresAt - at) / 1000))
        }
      }
    })
  }

  /**
   * The routes whose token expiries the gauge shows from now on, in place of
   * any before: the composition root hands over the routes it has just built,
   * so after a reload the gauge follows the routes being served.
   */
  watchTokenExpiries (source: TokenExpirySource): void {
    this.#expiries = source
  }

  /** One answered request; `route` is undefined when the request matched none. */
  request (routeName: string | undefined, method: string, status: number, seconds: number): void {
    const route = routeName ?? NO_ROUTE_LABEL
    const statusClass = `${Math.floor(status / 100)}xx`
    const key = `${route} ${method} ${statusClass}`
    let children = this.#requestChildren.get(key)
    if (children === undefined) {
      children = {
        count: this.#requests.labels({ route, method, status_class: statusClass }),
        duration: this.#duration.labels({ route }),
        activity: routeName === undefined ? undefined : this.#activityOf(routeName)
      }
      this.#requestChildren.set(key, children)
    }
    children.count.inc()
    children.duration.observe(seconds)
    children.activity?.request(this.#now(), status >= 500)
  }

  upstreamError (route: string, code: string): void {
    this.#upstreamErrors.inc({ route, code })
  }

  tokenRequest (route: string, outcome: TokenOutcome): void {
    this.#tokenRequests.inc({ route, outcome })
    const activity = this.#activityOf(route)
    activity.tokenRequests++
    if (outcome === 'rejected' || outcome === 'unavailable') activity.tokenFailures++
  }

  /** The route's request and token request counts (zero for a route not yet used). */
  activity (route: string): RouteActivity {
    return (this.#activity.get(route) ?? new ActivityCounter()).view(this.#now())
  }

  #activityOf (route: string): ActivityCounter {
    let activity = this.#activity.get(route)
    if (activity === undefined) {
      activity = new ActivityCounter()
      this.#activity.set(route, activity)
    }
    return activity
  }

  replay (route: string): void {
    this.#replays.inc({ route })
  }

  websocketSession (route: string): void {
    this.#websocketSessions.inc({ route })
  }

  storeError (operation: StoreOperation): void {
    this.#storeErrors.inc({ operation })
  }
}
