import type { Dispatcher } from 'undici'
import { Agent } from '../auth/undici-parts.js'
import { tlsConnectOptions, type TlsClientSettings, type TlsConnectOptions } from '../auth/tls-agent.js'

/** TLS options of a route's upstream connections, in the shape both undici and ws take. */
export type TransportTls = TlsConnectOptions

/** How one route reaches its upstream: plain requests and websocket handshakes alike. */
export interface RouteTransport {
  /** The route's own pool of upstream connections. */
  readonly dispatcher: Dispatcher
  /** For connections made outside the pool (websocket handshakes). */
  readonly tls: TransportTls
  /** Waits for requests in flight, or with `force` cuts them. */
  close (force: boolean): Promise<void>
}

/** Idle upstream connections are closed after this long. */
const KEEP_ALIVE_TIMEOUT_MS = 10_000

/**
 * A route's transport, with the route's `tls`: a client certificate presented
 * to the upstream (mutual TLS, and the certificate a bound token belongs to)
 * and CAs added to the system's. Certificates are always verified. Built anew
 * by each config (re)load, so a renewed certificate file is used by the new
 * connections after a reload.
 */
export function routeTransport (settings?: TlsClientSettings): RouteTransport {
  const tls = tlsConnectOptions(settings)
  const dispatcher = new Agent({ connect: { ...tls }, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS })
  return {
    dispatcher,
    tls,
    close: async (force) => { await (force ? dispatcher.destroy() : dispatcher.close()) }
  }
}
