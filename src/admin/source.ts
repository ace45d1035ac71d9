import type { Config } from '../config/schema.js'
import type { RouteActivity } from '../telemetry/activity.js'

/**
 * What the admin listener reads and drives of the proxy serving now: declared
 * here, provided by the composition root (app.ts), so the admin knows nothing
 * of the fastify app, the brokers' class or the metrics registry.
 */
export interface AdminSource {
  /** The config being served: its routes, the admin address, the Host allow-list. */
  readonly config: Config
  /** The token of the route named so; undefined when no route has that name. */
  routeToken (name: string): RouteToken | undefined
  /** The route's request and token request counts (zero for a route not yet used). */
  activity (route: string): RouteActivity
  /** The Prometheus exposition, with its content type. */
  metricsText (): Promise<{ contentType: string, text: string }>
}

/** One route's token, as the admin port shows it and acts on it. */
export interface RouteToken {
  status (): TokenStatus
  /** Where the token is shared: `ok`, `unreachable` (a Redis outage), or `none` (memory only, or a static key, which is config). */
  store (): 'ok' | 'unreachable' | 'none'
  /** Settles once the route can serve a token now, obtaining one if need be (/readyz); rejects when it cannot. */
  ready (): Promise<void>
  /** Renews the token now (POST /routes/NAME/renew). */
  renew (): Promise<void>
  /** Forgets the token, here and in the store (DELETE /routes/NAME/token). */
  forget (): Promise<void>
}

/** A route's token state; times are epoch ms. */
export interface TokenStatus {
  state: string
  expiresAt: number | undefined
  lastRefreshAt: number | undefined
  lastError: string | undefined
  lastErrorAt: number | undefined
  /** The token served now, only for its fingerprint: never shown. */
  token: { accessToken: string } | undefined
}
