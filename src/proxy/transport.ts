import type { ConnectionOptions } from 'node:tls'
import { Agent, type Dispatcher } from 'undici'

/** TLS options of a route's upstream connections, in the shape both undici and ws take. */
export type TransportTls = Readonly<Pick<ConnectionOptions, 'rejectUnauthorized' | 'ca' | 'cert' | 'key'>>

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
 * A route's transport. Certificates are always verified, stated explicitly so
 * that NODE_TLS_REJECT_UNAUTHORIZED=0 cannot turn verification off; a route's
 * own TLS settings (client certificate, CA) would join `tls` here.
 */
export function routeTransport (): RouteTransport {
  const tls: TransportTls = { rejectUnauthorized: true }
  const dispatcher = new Agent({ connect: { ...tls }, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS })
  return {
    dispatcher,
    tls,
    close: async (force) => { await (force ? dispatcher.destroy() : dispatcher.close()) }
  }
}
