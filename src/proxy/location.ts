/**
 * SPEC: a `Location` that points into the route's upstream is rewritten to the
 * matching local path, so clients (which the proxy never lets follow a
 * redirect with the token themselves) stay on the proxy. Relative references
 * and other hosts are passed on untouched: a client resolves those the same
 * against the local URL as against the upstream's.
 *
 * A rewrite never yields a reference that leaves the proxy. A local path is
 * the prefix plus the upstream path, so behind a "/" route an upstream path
 * whose first segment is empty (`http://upstream//evil.example/x`, or
 * `/\evil.example`, which URL parsing turns into `//evil.example`) would come
 * out as `//evil.example/x`: a network-path reference, another host to every
 * client. No local URL stands for such an upstream path (the proxy refuses
 * empty path segments), so that Location is passed on as the upstream wrote
 * it: an absolute URL stays on the upstream's own origin, a path-absolute one
 * starts with a single "/" and stays on the proxy.
 */
export function locationRewriter (upstream: string, prefix: string): (location: string) => string {
  const base = new URL(upstream)
  const basePath = base.pathname.replace(/\/$/, '')
  const localPrefix = prefix === '/' ? '' : prefix
  return (location) => {
    const absolute = /^[a-z][a-z0-9+.-]*:/i.test(location)
    if (!absolute && !(location.startsWith('/') && !location.startsWith('//'))) return location
    let url: URL
    try {
      url = new URL(location, base)
    } catch {
      return location
    }
    if (url.origin !== base.origin) return location
    if (basePath !== '' && url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) return location
    const rest = url.pathname.slice(basePath.length)
    const local = `${localPrefix}${rest === '' && localPrefix === '' ? '/' : rest}${url.search}${url.hash}`
    return leavesOrigin(local) ? location : local
  }
}

/** Whether a reference that starts with "/" names another host: `//host` and, to browsers, `/\host`. */
function leavesOrigin (reference: string): boolean {
  return reference[1] === '/' || reference[1] === '\\'
}
