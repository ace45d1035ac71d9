import type { IncomingHttpHeaders } from 'node:http'

/**
 * Request headers that never reach an upstream: hop-by-hop ones (RFC 9110
 * §7.6.1), the client's own credentials (the route's replaces them), the
 * proxy's key, and forwarding headers a client could forge.
 * reply-from already drops `connection` and the headers it names.
 */
const DROPPED_REQUEST_HEADERS = [
  'authorization', 'proxy-authorization', 'x-proxy-key',
  // Node has already answered 100-continue to the client; undici refuses to send it on.
  'expect',
  'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip'
]

/** Hop-by-hop response headers (reply-from drops `transfer-encoding` itself). */
const DROPPED_RESPONSE_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding']

export function cleanRequestHeaders (headers: IncomingHttpHeaders, credential: [string, string]): IncomingHttpHeaders {
  // `in` first: most of these are absent, and a delete is far dearer than a look-up.
  for (const name of DROPPED_REQUEST_HEADERS) if (name in headers) delete headers[name]
  headers[credential[0]] = credential[1]
  return headers
}

export function cleanResponseHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const listed = typeof headers.connection === 'string' ? headers.connection.toLowerCase().split(',') : []
  for (const name of listed) delete headers[name.trim()]
  for (const name of DROPPED_RESPONSE_HEADERS) if (name in headers) delete headers[name]
  return headers
}
