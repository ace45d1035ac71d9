import type { IncomingHttpHeaders } from 'node:http'

/**
 * Request headers that never reach an upstream: hop-by-hop ones (RFC 9110
 * §7.6.1; undici frames the body itself), the client's own credentials (the
 * route's replace them), the proxy's key, and forwarding headers a client
 * could forge.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  'authorization', 'proxy-authorization', 'x-proxy-key',
  // Node has already answered 100-continue to the client; undici refuses to send it on.
  'expect',
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip',
  // Set to the upstream's own.
  'host'
])

/**
 * Browsers keep one cookie jar for every port of a host, so the Cookie header
 * of a request to the proxy holds the cookies of every local app (a notebook's
 * session, a dev server's): it reaches an upstream only on routes that opt in
 * with `forwardCookies`.
 */
const DROPPED_REQUEST_HEADERS_AND_COOKIES = new Set([...DROPPED_REQUEST_HEADERS, 'cookie'])

/** Hop-by-hop response headers: Node frames the answer to the client itself. */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding'])

/**
 * The headers an upstream receives: the client's, less the dropped ones (and
 * Cookie unless the route forwards cookies) and those its Connection header
 * names, with the upstream's own Host and the route's credential headers (set
 * last, so no header the client names can remove or replace them).
 */
export function upstreamRequestHeaders (client: IncomingHttpHeaders, host: string, credential: ReadonlyArray<readonly [string, string]>, forwardCookies: boolean): IncomingHttpHeaders {
  const headers = passedOn(client, forwardCookies ? DROPPED_REQUEST_HEADERS : DROPPED_REQUEST_HEADERS_AND_COOKIES)
  headers.host = host
  for (let i = 0; i < credential.length; i++) {
    const [name, value] = credential[i] as readonly [string, string]
    headers[name] = value
  }
  return headers
}

/** The upstream's answer headers less hop-by-hop ones and those its Connection header names. */
export function cleanResponseHeaders (upstream: IncomingHttpHeaders): IncomingHttpHeaders {
  return passedOn(upstream, DROPPED_RESPONSE_HEADERS)
}

/**
 * A copy of `headers` without the `dropped` ones and those the Connection
 * header names, made in one pass: deleting from a copy is far dearer.
 */
function passedOn (headers: IncomingHttpHeaders, dropped: ReadonlySet<string>): IncomingHttpHeaders {
  const listed = connectionListed(headers.connection)
  const kept: IncomingHttpHeaders = {}
  for (const name in headers) {
    if (dropped.has(name) || (listed !== undefined && listed.has(name))) continue
    kept[name] = headers[name]
  }
  return kept
}

/** The header names Connection headers list; undefined for the usual `keep-alive` or `close`, which name no header. */
function connectionListed (connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined
  // An upstream may send several Connection lines: undici gives those as an array.
  const value = (typeof connection === 'string' ? connection : connection.join(',')).toLowerCase()
  if (value === 'keep-alive' || value === 'close') return undefined
  return new Set(value.split(',').map((name) => name.trim()))
}
