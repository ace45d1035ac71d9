/**
 * SPEC: a `Location` that points into the route's upstream is rewritten to the
 * matching local path, so clients (which the proxy never lets follow a
 * redirect with the token themselves) stay on the proxy. Relative references
 * and other hosts are passed on untouched.
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
    return `${localPrefix}${rest === '' && localPrefix === '' ? '/' : rest}${url.search}${url.hash}`
  }
}
