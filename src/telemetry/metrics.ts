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

/** One route, method and status class of answered requests, as an exporter counts them. */
export interface RequestSeries {
  count: { inc: () => void }
  duration: { observe: (value: number) => void }
}

/** Where the counts go to be scraped (telemetry/prometheus.ts); absent when nothing can read them. */
export interface MetricsExporter {
  requestSeries (route: string, method: string, statusClass: string): RequestSeries
  upstreamError (route: string, code: string): void
  tokenRequest (route: string, outcome: TokenOutcome): void
  replay (route: string): void
  websocketSession (route: string): void
  storeError (operation: StoreOperation): void
  text (): Promise<{ contentType: string, text: string }>
}

const UNCOUNTED: RequestSeries = { count: { inc: () => {} }, duration: { observe: () => {} } }

/**
 * The proxy's metrics: each route's activity (the admin's /routes and status
 * page), and the Prometheus metrics of /metrics when they are exported
 * (`Metrics.exported`). Without an admin port nothing can read the latter:
 * the process then neither loads prom-client nor runs its default
 * collectors (an event loop delay timer every 10 ms, a GC observer).
 */
export class Metrics {
  readonly #exporter: MetricsExporter | undefined
  /** Per route, method and status class, the labelled children: prom-client hashes the labels on every call otherwise. */
  readonly #requestChildren = new Map<string, RequestSeries & { activity: ActivityCounter | undefined }>()
  readonly #activity = new Map<string, ActivityCounter>()
  readonly #now: () => number
  /** None until the routes are built: until then the gauge has no series. */
  #expiries: TokenExpirySource = () => []

  /** Metrics counted for the admin's activity views only; `exported` gives the Prometheus ones too. */
  constructor (now: () => number = Date.now, exporter?: (expiries: TokenExpirySource) => MetricsExporter) {
    this.#now = now
    this.#exporter = exporter?.(() => this.#expiries())
  }

  /** Metrics with their Prometheus exporter (prom-client is loaded now). */
  static async exported (now: () => number = Date.now): Promise<Metrics> {
    const { PrometheusExporter } = await import('./prometheus.js')
    return new Metrics(now, (expiries) => new PrometheusExporter(now, expiries))
  }

  /** The Prometheus text of /metrics; empty when they are not exported. */
  async text (): Promise<{ contentType: string, text: string }> {
    return await this.#exporter?.text() ?? { contentType: 'text/plain; version=0.0.4; charset=utf-8', text: '' }
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
        ...(this.#exporter?.requestSeries(route, method, statusClass) ?? UNCOUNTED),
        activity: routeName === undefined ? undefined : this.#activityOf(routeName)
      }
      this.#requestChildren.set(key, children)
    }
    children.count.inc()
    children.duration.observe(seconds)
    children.activity?.request(this.#now(), status >= 500)
  }

  upstreamError (route: string, code: string): void {
    this.#exporter?.upstreamError(route, code)
  }

  tokenRequest (route: string, outcome: TokenOutcome): void {
    this.#exporter?.tokenRequest(route, outcome)
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
    this.#exporter?.replay(route)
  }

  websocketSession (route: string): void {
    this.#exporter?.websocketSession(route)
  }

  storeError (operation: StoreOperation): void {
    this.#exporter?.storeError(operation)
  }
}
