/** Where a route's requests go, worked out once when the route is registered. */
export interface UpstreamTarget {
  /** `https://api.example.com:8443`: the dispatcher's origin. */
  origin: string
  /** The Host header the upstream expects. */
  host: string
  /** The upstream URL's path without its trailing slash ("" for the root). */
  basePath: string
  /** How many characters of a local path are the route's prefix ("/" counts none). */
  prefixLength: number
}

export function upstreamTarget (upstream: string, prefix: string): UpstreamTarget {
  const url = new URL(upstream)
  return {
    origin: url.origin,
    host: url.host,
    basePath: url.pathname.replace(/\/$/, ''),
    prefixLength: prefix === '/' ? 0 : prefix.length
  }
}

/** The path of a request target, without its query (which may carry keys). */
export function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/**
 * The upstream path and query of a local request target. The guards have
 * checked the path (prefix spelled literally, no dot-segments, no empty
 * segments), so what follows the prefix goes on byte for byte after the
 * upstream's base path, and the query exactly as the client sent it:
 * re-encoding could break signed URLs. A bare prefix ("/viv", "/viv?a=1")
 * maps to the base path itself, or "/" at the upstream's root.
 */
export function upstreamPath (target: UpstreamTarget, url: string): string {
  const path = pathOf(url)
  const mapped = (target.basePath + path.slice(target.prefixLength)) || '/'
  return path.length === url.length ? mapped : mapped + url.slice(path.length)
}
