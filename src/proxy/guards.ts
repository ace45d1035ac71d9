import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { isIPv4, isIPv6 } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isSocketAddress, type Config } from '../config/schema.js'
import { BadRequestError, ClientKeyInvalidError, HostNotAllowedError, OriginNotAllowedError, UriTooLongError } from '../errors.js'
import { routeOf } from './request-state.js'
import { pathOf } from './upstream.js'

/** Longer request targets are refused (414) before any work. */
export const MAX_URL_LENGTH = 8 * 1024
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]']
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]'])
const PREFLIGHT_MAX_AGE = '600'

/**
 * A port that adds credentials to any request must serve only its owner's
 * tools. Checked on every request, before any token work, in this order:
 * request target, Host (DNS rebinding), Origin / Sec-Fetch-Site (browsers),
 * CORS preflight, client key.
 */
export function registerGuards (app: FastifyInstance, config: Config): void {
  const hosts = allowedHosts(config)
  const origins = new Set(config.security.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')))
  const keyDigest = config.security.clientKey === undefined ? undefined : digest(config.security.clientKey)

  app.addHook('onRequest', (request, reply, done) => {
    const url = request.raw.url ?? ''
    if (url.length > MAX_URL_LENGTH) return done(new UriTooLongError(MAX_URL_LENGTH))
    // Only origin-form targets ("/path?query"): absolute-form and "//host" would name another server.
    if (!url.startsWith('/') || url.startsWith('//')) return done(new BadRequestError('request target must be a path starting with a single "/"'))
    const pathProblem = checkPath(url, routeOf(request)?.prefix)
    if (pathProblem !== undefined) return done(new BadRequestError(pathProblem))

    const host = request.headers.host
    if (host === undefined || !hostAllowed(host, hosts)) return done(new HostNotAllowedError(JSON.stringify(host ?? '')))

    const origin = request.headers.origin
    const site = request.headers['sec-fetch-site']
    if (origin !== undefined || site === 'cross-site' || site === 'same-site') {
      if (origin === undefined || !origins.has(origin.toLowerCase())) return done(new OriginNotAllowedError(JSON.stringify(origin ?? `(${site as string} request)`)))
      reply.header('access-control-allow-origin', origin).header('vary', 'Origin')
      if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
        answerPreflight(request, reply)
        return
      }
    }

    if (keyDigest !== undefined) {
      const sent = request.headers['x-proxy-key']
      if (typeof sent !== 'string' || !timingSafeEqual(digest(sent), keyDigest)) return done(new ClientKeyInvalidError())
    }
    done()
  })
}

/**
 * Whether the proxy listens where other machines may reach it without a
 * client key: worth a loud warning. `security.allowedHosts` changes nothing
 * here: a Host header is the client's choice, so it stops DNS rebinding, not
 * a client that can reach the port. A Unix socket is guarded by its file mode.
 */
export function exposedWithoutProtection (config: Config): boolean {
  return !isSocketAddress(config.listen) && !isLoopbackHost(config.listen.host) && config.security.clientKey === undefined
}

/** localhost, 127.0.0.0/8 and ::1: reachable from this machine only. */
export function isLoopbackHost (host: string): boolean {
  const value = host.toLowerCase()
  return value === 'localhost' || value === '::1' || value === '[::1]' || (isIPv4(value) && value.startsWith('127.'))
}

/**
 * Sets the CORS grant for an allowed origin on forwarded response headers. The
 * answer now depends on Origin, so Origin joins the upstream's Vary fields, on
 * one line or on several (given as an array), all of which are kept; `Vary: *`
 * already covers it.
 */
export function grantOrigin (headers: IncomingHttpHeaders, origin: string): void {
  headers['access-control-allow-origin'] = origin
  // Node's typings say one string; undici gives a header sent on several lines as an array.
  const all: NodeJS.Dict<string | string[]> = headers
  const vary = all.vary
  if (vary === undefined || vary === '') {
    all.vary = 'Origin'
    return
  }
  const lines = typeof vary === 'string' ? [vary] : vary
  if (lines.some((line) => /(^|,)\s*(origin|\*)\s*(,|$)/i.test(line))) return
  all.vary = typeof vary === 'string' ? `${vary}, Origin` : [...vary, 'Origin']
}

function answerPreflight (request: FastifyRequest, reply: FastifyReply): void {
  reply.header('access-control-allow-methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS')
  const requested = request.headers['access-control-request-headers']
  if (typeof requested === 'string') reply.header('access-control-allow-headers', requested)
  if (request.headers['access-control-request-private-network'] === 'true') reply.header('access-control-allow-private-network', 'true')
  reply.header('access-control-max-age', PREFLIGHT_MAX_AGE).code(204).send()
}

/**
 * The Host values a listener of this config accepts (DNS rebinding defence):
 * loopback names, `listen.host` and `extra` (unless a wildcard address), and
 * `security.allowedHosts`; lower-cased, IPv6 addresses in brackets.
 */
export function allowedHosts (config: Config, ...extra: Array<string | undefined>): Set<string> {
  const hosts = new Set(LOOPBACK_HOSTS)
  for (const own of [config.listen.host, ...extra]) {
    if (own === undefined) continue
    const value = own.toLowerCase()
    if (!WILDCARD_HOSTS.has(value)) hosts.add(value.includes(':') && !value.startsWith('[') ? `[${value}]` : value)
  }
  for (const h of config.security.allowedHosts) hosts.add(h.toLowerCase())
  return hosts
}

/** Exact match of the Host value, with or without its port: `localhost.evil.example` is not `localhost`. */
export function hostAllowed (host: string, allowed: Set<string>): boolean {
  const value = host.toLowerCase()
  if (allowed.has(value)) return true
  const withoutPort = value.replace(/:\d+$/, '')
  return withoutPort !== value && allowed.has(withoutPort)
}

/**
 * A Host that is an IP address (`192.0.2.7`, `[2001:db8::7]`, either with a
 * port): a browser sends one only for a URL that names the address itself, so
 * it cannot carry a rebound attacker's name.
 */
export function isIpLiteralHost (host: string): boolean {
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/i.exec(host)
  if (bracketed !== null) return isIPv6(bracketed[1] as string)
  return isIPv4(host.replace(/:\d+$/, ''))
}

/**
 * No segment may be, or decode to, a dot-segment, however often it was
 * percent-encoded or whatever slash it hides behind (`..`, `%2e%2e`,
 * `%252e%252e`, `..%2f`, `..\`, `..;`); no empty segments (`//`); and the route's
 * prefix must be spelled literally (`/%76ivacity` is refused), so what the
 * upstream receives is always inside the route's base path.
 */
function checkPath (url: string, prefix: string | undefined): string | undefined {
  const path = pathOf(url)
  if (!SUSPECT_PATH.test(path)) return prefixProblem(path, prefix)
  const segments = path.split('/').slice(1)
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string
    if (segment === '' && i < segments.length - 1) return 'empty path segments ("//") are not allowed'
    const decoded = decodeRepeatedly(segment)
    if (decoded === undefined) return 'malformed percent-encoding in the path'
    if (decoded.split(/[/\\]/).some(isDotSegment)) return 'dot-segments ("..") are not allowed in the path'
  }
  return prefixProblem(path, prefix)
}

/** `..` and `.`, also with path parameters (`..;x`), which servlet containers strip before resolving. */
function isDotSegment (part: string): boolean {
  const name = part.split(';', 1)[0]
  return name === '.' || name === '..'
}

/** Only paths with one of these can hold a dot-segment, an encoding or an empty segment. */
const SUSPECT_PATH = /[%.\\]|\/\//

function prefixProblem (path: string, prefix: string | undefined): string | undefined {
  if (prefix !== undefined && prefix !== '/' && !(path === prefix || path.startsWith(`${prefix}/`))) {
    return `the route prefix must be spelled as ${prefix}`
  }
  return undefined
}

function decodeRepeatedly (segment: string): string | undefined {
  let value = segment
  for (let i = 0; i < 4 && value.includes('%'); i++) {
    try {
      value = decodeURIComponent(value)
    } catch {
      return undefined
    }
  }
  return value
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}
