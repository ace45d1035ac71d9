import type { IncomingHttpHeaders } from 'node:http'

/**
 * Request headers that never reach an upstream: hop-by-hop ones (RFC 9110
 * §7.6.1; undici frames the body itself), the client's own credentials (the
 * route's replace them), the proxy's key, and forwarding headers a client
 * could forge.
 */
const DROPPED_REQUEST_HEADERS = [
  'authorization', 'proxy-authorization', 'x-proxy-key',
  // Node has already answered 100-continue to the client; undici refuses to send it on.
  'expect',
  'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip'
]

/** Hop-by-hop response headers: Node frames the answer to the client itself. */
const DROPPED_RESPONSE_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding']

/**
 * The headers an upstream receives: the client's, less the dropped ones and
 * those its Connection header names, with the upstream's own Host and the
 * route's credential (set last, so no header the client names can remove them).
 */
export function upstreamRequestHeaders (client: IncomingHttpHeaders, host: string, credential: readonly [string, string]): IncomingHttpHeaders {
  const headers = { ...client }
  dropConnectionListed(headers)
  // `in` first: most of these are absent, and a delete is far dearer than a look-up.
  for (const name of DROPPED_REQUEST_HEADERS) if (name in headers) delete headers[name]
  headers.host = host
  headers[credential[0]] = credential[1]
  return headers
}

/** The upstream's answer headers less hop-by-hop ones and those its Connection header names. */
export function cleanResponseHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  dropConnectionListed(headers)
  for (const name of DROPPED_RESPONSE_HEADERS) if (name in headers) delete headers[name]
  return headers
}

function dropConnectionListed (headers: IncomingHttpHeaders): void {
  const connection = headers.connection
  if (typeof connection !== 'string') return
  for (const name of connection.toLowerCase().split(',')) delete headers[name.trim()]
  delete headers.connection
}
