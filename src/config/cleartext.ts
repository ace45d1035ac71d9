import { BlockList } from 'node:net'
import type { Config } from './schema.js'

/** A URL of the config that the proxy reaches in cleartext beyond this machine. */
export interface CleartextUrl {
  route: string
  /** Key path within the route, e.g. `upstream`, `auth.tokenUrl`, `auth.refresh.url`. */
  key: string
  /** Scheme, host and port only: never a path, query or user:password, which may carry secrets. */
  origin: string
}

/** Keys that name an endpoint the proxy connects to (tokenUrl, refresh.url, issuer, authorizationUrl, ...). */
const ENDPOINT_KEY = /^(url|issuer|[A-Za-z]+Url)$/
/** What the proxy sends, not where: a field of a request body may well be named `url`. */
const CONTENT_KEYS = new Set(['body', 'params', 'claims', 'headers', 'response'])

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

/**
 * Whether a URL's host is this machine: 127.0.0.0/8, ::1 (also as
 * ::ffff:127.x) or `localhost`. Traffic to it never crosses a network.
 */
export function isLoopbackHost (hostname: string): boolean {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  if (host.toLowerCase() === 'localhost') return true
  try {
    return loopback.check(host, host.includes(':') ? 'ipv6' : 'ipv4')
  } catch {
    // Not an IP address: a host name, resolved elsewhere.
    return false
  }
}

/**
 * Every `http://` URL of the routes (upstreams and token endpoints) whose
 * host is not loopback: what travels there (the route's credential, client
 * secrets, tokens) can be read and changed on the way.
 */
export function cleartextUrls (config: Config): CleartextUrl[] {
  const found: CleartextUrl[] = []
  for (const route of config.routes) {
    const add = (key: string, value: string): void => {
      let url: URL
      try {
        url = new URL(value)
      } catch {
        return
      }
      if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) found.push({ route: route.name, key, origin: url.origin })
    }
    add('upstream', route.upstream)
    const walk = (value: unknown, path: string): void => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return
      for (const [key, inner] of Object.entries(value)) {
        if (typeof inner === 'string' && ENDPOINT_KEY.test(key)) add(`${path}.${key}`, inner)
        else if (!CONTENT_KEYS.has(key)) walk(inner, `${path}.${key}`)
      }
    }
    walk(route.auth, 'auth')
  }
  return found
}
