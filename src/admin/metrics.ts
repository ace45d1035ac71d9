import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { TokenBroker } from '../auth/broker.js'
import type { StoreOperation } from '../auth/redis-token-store.js'

export type TokenOutcome = 'obtained' | 'refreshed' | 'rejected' | 'unavailable'

/** The route label of requests that matched no route: fixed, and no route name can spell it. */
const NO_ROUTE_LABEL = '(none)'

/** "Recent" request counts cover this long, in RECENT_STEPS steps (the status page, `status`). */
export const RECENT_WINDOW_MS = 5 * 60_000
const RECENT_STEPS = 30
const STEP_MS = RECENT_WINDOW_MS / RECENT_STEPS

/** What a person wants to know of one route at a glance; counts since the process started, unless `recent`. */
export interface RouteActivity {
  requests: { total: number, errors: number, recent: { total: number, errors: number, seconds: number } }
  tokenRequests: { total: number, failed: number }
}

/**
 * One route's request and token request counts, with the last
 * RECENT_WINDOW_MS kept as a ring of fixed steps: constant memory and a few
 * array writes per request, never a list of requests. An error is an answer
 * of 500 or more (the proxy's own TOKEN_* and UPSTREAM_* errors included).
 */
class ActivityCounter {
  requests = 0
  errors = 0
  tokenRequests = 0
  tokenFailures = 0
  /** Per slot, the step (time / STEP_MS) it counts; a slot of an older step is stale. */
  readonly #steps = new Float64Array(RECENT_STEPS).fill(-1)
  readonly #counts = new Uint32Array(RECENT_STEPS)
  readonly #errors = new Uint32Array(RECENT_STEPS)

  request (now: number, error: boolean): void {
    this.requests++
    if (error) this.errors++
    const step = Math.floor(now / STEP_MS)
    const slot = step % RECENT_STEPS
    if (this.#steps[slot] !== step) {
      this.#steps[slot] = step
      this.#counts[slot] = 0
      this.#errors[slot] = 0
    }
    this.#counts[slot]++
    if (error) this.#errors[slot]++
  }

  view (now: number): RouteActivity {
    const oldest = Math.floor(now / STEP_MS) - RECENT_STEPS + 1
    let total = 0
    let errors = 0
    for (let slot = 0; slot < RECENT_STEPS; slot++) {
      if (this.#steps[slot] < oldest) continue
      total += this.#counts[slot]
      errors += this.#errors[slot]
    }
    return {
      requests: { total: this.requests, errors: this.errors, recent: { total, errors, seconds: RECENT_WINDOW_MS / 1000 } },
      tokenRequests: { total: this.tokenRequests, failed: this.tokenFailures }
    }
  }
}

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

  constructor (brokers: () => Iterable<TokenBroker>, now: () => number = Date.now) {
    this.#now = now
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
        for (const broker of brokers()) {
          const expiresAt = broker.status().expiresAt
          if (expiresAt !== undefined && Number.isFinite(expiresAt)) expiry.set({ route: broker.name }, Math.round((expiresAt - at) / 1000))
        }
      }
    })
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
