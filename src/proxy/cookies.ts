/**
 * Scopes an upstream's cookies to its route (RFC 6265 §5.2, §5.3).
 *
 * Browsers keep one cookie jar per host name, shared by every port: a cookie
 * an upstream sets with `Path=/` through `http://localhost:8080/viv/` is sent
 * with every request to every other route of the proxy and to every other
 * local app. So each Set-Cookie line gets a Path under the route's prefix: the
 * path it names on the upstream, mapped like request paths are (`Path=/` and
 * the upstream's base path become the prefix, `Path=/x` becomes `/prefix/x`),
 * and the prefix itself when it names none or an unusable one (the browser's
 * default would be the request's directory, which for a bare `/viv` is `/`).
 * Behind a "/" route local paths are the upstream's own, so explicit paths
 * are kept (unless the upstream has a base path to take off) and absent ones
 * are left to the browser's default, which then matches the upstream's.
 *
 * A `Domain` attribute is dropped. It names the upstream's host or one of its
 * parents, which never domain-matches the proxy's host, so the browser would
 * reject the cookie outright (§5.3 step 6) and the upstream's session would
 * not work through the proxy; and a Domain that did match the proxy's host
 * (`localhost`, a name in allowedHosts) could only widen the cookie to other
 * hosts. Without it the cookie is host-only: the narrowest scope, and one that
 * works. Other attributes (Secure, HttpOnly, SameSite, Expires, ...) are kept
 * as sent. A `__Host-` cookie insists on `Path=/`; behind a prefix, browsers
 * refuse it rather than let it reach every route, which is the safe failure.
 */
export function cookieScoper (upstream: string, prefix: string): (setCookie: string | string[]) => string[] {
  const basePath = new URL(upstream).pathname.replace(/\/$/, '')
  const localPrefix = prefix === '/' ? '' : prefix
  /** The local Path for the Path attribute an upstream sent (undefined: none, or an unusable one); undefined: the line's own is kept. */
  const mapPath = (path: string | undefined): string | undefined => {
    const valid = path !== undefined && path.startsWith('/')
    if (localPrefix === '') return valid && basePath !== '' ? (underBase(path, basePath) || '/') : undefined
    return valid ? localPrefix + underBase(path, basePath) : localPrefix
  }
  const scope = (line: string): string | undefined => {
    const [nameValue = '', ...attributes] = line.split(';')
    let path: string | undefined
    const withoutDomain = [nameValue]
    const kept = [nameValue]
    for (const attribute of attributes) {
      const eq = attribute.indexOf('=')
      const name = (eq === -1 ? attribute : attribute.slice(0, eq)).trim().toLowerCase()
      if (name === 'domain' || name === '') continue
      withoutDomain.push(attribute)
      // The last Path attribute is the one that counts (§5.3 step 7).
      if (name === 'path') path = eq === -1 ? '' : attribute.slice(eq + 1).trim()
      else kept.push(attribute)
    }
    const mapped = mapPath(path)
    if (mapped === undefined) return withoutDomain.join(';')
    // A prefix may hold a ";" (it is a plain URL character), which no Path attribute can carry:
    // any shorter path would widen the cookie, so the cookie is dropped instead.
    if (mapped.includes(';')) return undefined
    return `${kept.join(';')}; Path=${mapped}`
  }
  return (setCookie) => {
    const lines = typeof setCookie === 'string' ? [setCookie] : setCookie
    const scoped: string[] = []
    for (const line of lines) {
      const kept = scope(line)
      if (kept !== undefined) scoped.push(kept)
    }
    return scoped
  }
}

/**
 * What of a cookie path lies under the upstream's base path ("" for the base
 * itself or any path above it, which covers the whole route). A path beside
 * the base matches nothing the route can reach; it is kept as a path under
 * the prefix, which is narrower still.
 */
function underBase (path: string, basePath: string): string {
  const trimmed = path.replace(/\/$/, '')
  if (trimmed === basePath) return ''
  if (path.startsWith(`${basePath}/`)) return path.slice(basePath.length)
  // An ancestor of the base path (RFC 6265 §5.1.4 path-match): it covers the whole route.
  if (basePath.startsWith(`${trimmed}/`)) return ''
  return path
}
