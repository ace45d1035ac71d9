import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { MetricsExporter, RequestSeries, StoreOperation, TokenExpirySource, TokenOutcome } from './metrics.js'

/**
 * The proxy's Prometheus metrics, in a registry of its own (so two proxies in
 * one process, as in tests, never share counters), with Node's default
 * process metrics. Labels are route names, methods, status classes and
 * outcome words: never a path, token or secret.
 */
export class PrometheusExporter implements MetricsExporter {
  readonly registry = new Registry()
  readonly #requests: Counter<'route' | 'method' | 'status_class'>
  readonly #duration: Histogram<'route'>
  readonly #upstreamErrors: Counter<'route' | 'code'>
  readonly #tokenRequests: Counter<'route' | 'outcome'>
  readonly #replays: Counter<'route'>
  readonly #websocketSessions: Counter<'route'>
  readonly #storeErrors: Counter<'operation'>

  /** `expiries`: the routes' current tokens, read at each scrape. */
  constructor (now: () => number, expiries: TokenExpirySource) {
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

  requestSeries (route: string, method: string, statusClass: string): RequestSeries {
    return {
      count: this.#requests.labels({ route, method, status_class: statusClass }),
      duration: this.#duration.labels({ route })
    }
  }

  upstreamError (route: string, code: string): void {
    this.#upstreamErrors.inc({ route, code })
  }

  tokenRequest (route: string, outcome: TokenOutcome): void {
    this.#tokenRequests.inc({ route, outcome })
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

  async text (): Promise<{ contentType: string, text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() }
  }
}
