import { isAbsolute } from 'node:path'
import * as z from 'zod/mini'
import type { RedisStoreConfig } from '../auth/redis-token-store.js'
import type { TokenSettings } from '../auth/token-settings.js'
import { baseUrlIssue, httpUrl, nonEmpty, parseHttpUrl, positiveMs, tlsOptions, transformIssue } from '../fields.js'
import { authSchema, clientOptionsOf, defaultUpstream, isUserLogin, type AuthConfig } from '../schemes/registry.js'

/**
 * The config schema is the single source of the config type: defaults from
 * SPEC.md "Config" live here and nowhere else; each auth type's options are
 * its scheme's (src/schemes/).
 */

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

const prefix = z.pipe(z.string().check(
  z.regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'must be a path starting with "/" made of plain URL characters (no "%", "?", "#" or spaces)'),
  z.refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not contain "." or ".." segments'),
  z.refine((p) => !p.includes('//'), 'must not contain "//"')
), z.transform((p: string) => p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p))

const routeObject = z.strictObject({
  prefix: z.optional(prefix),
  /** Optional only where the auth settings name the API (`netography`). */
  upstream: z.optional(httpUrl.check(z.superRefine((u, ctx) => {
    const url = parseHttpUrl(u)
    const issue = url === undefined ? undefined : baseUrlIssue(url)
    if (issue !== undefined) ctx.addIssue({ code: 'custom', message: issue })
  }))),
  /** Upstream statuses that mean "token rejected": drop the token, get a new one, replay once. */
  retryOn: z._default(z.array(z.number().check(z.int(), z.gte(400), z.lte(599))), [401]),
  forwardCookies: z._default(z.boolean(), false),
  /** Upstream response timeout, ms. */
  timeout: z._default(positiveMs, 30_000),
  /** Client certificate (mTLS) and added CAs for the upstream; also the token endpoint's unless `auth.tls` is given. */
  tls: z.optional(tlsOptions),
  /** A user-login route counts as ready in /readyz before anyone ran `bearer-proxy login` for it. */
  readyWithoutLogin: z._default(z.boolean(), false),
  auth: authSchema
}).check(z.superRefine((route, ctx) => {
  if (route.upstream === undefined && defaultUpstream(route.auth) === undefined) ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'is required' })
  if (route.readyWithoutLogin && !isUserLogin(route.auth)) ctx.addIssue({ code: 'custom', path: ['readyWithoutLogin'], message: 'applies only to authorization_code and device_code routes' })
  // Checked here, not in the auth block: the certificate may come from the route's tls.
  const client = clientOptionsOf(route.auth)
  const method = client?.clientAuth
  if ((method === 'tls_client_auth' || method === 'self_signed_tls_client_auth') && (client?.tls ?? route.tls)?.cert === undefined) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'tls'], message: `needs cert and key for ${method} (here or in the route's tls)` })
  }
}))

const routeSchema = z.pipe(routeObject, z.transform((route: z.output<typeof routeObject>) => {
  // SPEC: an OAuth type's `auth.tls` defaults to the route's `tls` (a token endpoint behind the same mTLS).
  const client = clientOptionsOf(route.auth)
  if (client === undefined) return route
  if (route.tls !== undefined && client.tls === undefined) return { ...route, auth: { ...route.auth, tls: route.tls } as AuthConfig }
  // RFC 8705 §3: a token bound to the certificate that authenticated the client goes to the
  // upstream over that certificate, so without a route tls of its own the route uses auth.tls.
  const bound = client.clientAuth === 'tls_client_auth' || client.clientAuth === 'self_signed_tls_client_auth'
  if (route.tls === undefined && bound && client.tls !== undefined) return { ...route, tls: client.tls }
  return route
}))

/** A TCP listener. */
export interface TcpAddress { host: string, port: number, path?: undefined, mode?: undefined }
/** A Unix socket listener: only users the file mode lets in can connect. */
export interface SocketAddress { path: string, mode: number, host?: undefined, port?: undefined }
/** Discriminated by `path`; reading `host` of either form is allowed (undefined for a socket). */
export type ListenAddress = TcpAddress | SocketAddress

export function isSocketAddress (address: ListenAddress): address is SocketAddress {
  return address.path !== undefined
}

/** `127.0.0.1:8080`, `[::1]:8080`, or the socket's path: for messages and logs. */
export function addressText (address: ListenAddress): string {
  if (isSocketAddress(address)) return address.path
  const host = address.host.includes(':') && !address.host.startsWith('[') ? `[${address.host}]` : address.host
  return `${host}:${address.port}`
}

export const DEFAULT_LISTEN: TcpAddress = { host: '127.0.0.1', port: 8080 }
export const DEFAULT_ADMIN: TcpAddress = { host: '127.0.0.1', port: 9901 }

/** Owner only: a socket is chosen so that only its owner can use the credentials. */
export const DEFAULT_SOCKET_MODE = 0o600
/** sun_path holds 108 bytes on Linux, 104 on macOS, the final NUL included. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'darwin' ? 103 : 107

const socketPath = z.string().check(
  z.refine((p) => isAbsolute(p), 'must be an absolute path'),
  z.refine((p) => Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES, `must be at most ${MAX_SOCKET_PATH_BYTES} bytes long (the limit of a Unix socket path)`)
)

/**
 * A quoted octal string only: YAML 1.2 reads an unquoted 0660 as the decimal
 * number 660, and a number such as 400 could mean either base, so a number is
 * refused rather than guessed.
 */
const socketMode = z.pipe(z.unknown(), z.transform((value, ctx) => {
  if (typeof value !== 'string' || !/^0?[0-7]{3}$/.test(value)) {
    transformIssue(ctx, { message: 'must be an octal mode as a quoted string, e.g. "0660" (an unquoted 0660 is the number 660 in YAML)' })
    return z.NEVER
  }
  return Number.parseInt(value, 8)
}))

/** `{ host, port }` or `{ path, mode }`, never a mix (SPEC "Config"). */
const listener = (defaults: TcpAddress) => z.pipe(z.strictObject({
  host: z.optional(nonEmpty),
  port: z.optional(z.number().check(z.int(), z.gte(0), z.lte(65535))),
  path: z.optional(socketPath),
  mode: z.optional(socketMode)
}).check(z.superRefine((value, ctx) => {
  if (value.path !== undefined) {
    for (const key of ['host', 'port'] as const) {
      if (value[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'cannot be combined with path (a Unix socket has no host or port)' })
    }
  } else if (value.mode !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['mode'], message: 'applies only to a Unix socket (path)' })
  }
})), z.transform((value: { host?: string | undefined, port?: number | undefined, path?: string | undefined, mode?: number | undefined }): ListenAddress => value.path !== undefined
  ? { path: value.path, mode: value.mode ?? DEFAULT_SOCKET_MODE }
  : { host: value.host ?? defaults.host, port: value.port ?? defaults.port }))

const adminListener = listener(DEFAULT_ADMIN)

/**
 * `false` or a listener. Not a z.union: a union that fails reports a bare
 * "Invalid input" at `admin`, where a listener's own issue names its key
 * (`admin.host: cannot be combined with path`).
 */
const adminSchema = z.pipe(z.optional(z.custom<false | z.input<typeof adminListener>>()), z.transform((value: false | z.input<typeof adminListener> | undefined, ctx): false | ListenAddress => {
  if (value === undefined) return { ...DEFAULT_ADMIN }
  if (value === false) return false
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    transformIssue(ctx, { message: 'must be false, { host, port } or { path }' })
    return z.NEVER
  }
  const result = adminListener.safeParse(value, { reportInput: false })
  if (result.success) return result.data
  for (const issue of result.error.issues) transformIssue(ctx, { ...issue })
  return z.NEVER
}))

/** Key prefix of a Redis store when the config names none (SPEC "Config"). */
export const DEFAULT_KEY_PREFIX = 'bearer-proxy:'

/**
 * Why `value` cannot be a Redis store's URL, or undefined. Only what the proxy
 * itself reads: host, port, user, password and a database number; a query
 * (which some clients turn into connection options) is refused rather than
 * half-honoured. The value is never echoed: it may carry a password.
 */
export function redisUrlIssue (value: string): string | undefined {
  const shape = 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0'
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return shape
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') return shape
  if (url.search !== '' || url.hash !== '') return 'must not carry a query or fragment'
  if (!/^\/?(?:\d{1,5})?$/.test(url.pathname)) return 'may name only a database number as its path, e.g. redis://127.0.0.1:6379/0'
  return undefined
}

/**
 * Where tokens are kept beyond the process (SPEC "Shared tokens"). `stateDir`
 * is short for the file form; `memory`, the default, keeps them in the process.
 */
const storeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('memory') }),
  z.strictObject({ type: z.literal('file'), dir: nonEmpty }),
  z.strictObject({
    type: z.literal('redis'),
    /** May carry a user and password: a secret, never logged or shown. */
    url: z.string().check(z.superRefine((value, ctx) => {
      const issue = redisUrlIssue(value)
      if (issue !== undefined) ctx.addIssue({ code: 'custom', message: issue })
    })),
    /** Every key the proxy writes (entries, locks, its secret) starts with it, so one Redis can serve others too. */
    keyPrefix: z._default(nonEmpty, DEFAULT_KEY_PREFIX)
  })
], { error: (issue) => issue.code === 'invalid_union' ? 'must be one of: memory, file, redis' : undefined })

export const configSchema = z.strictObject({
  listen: z._default(listener(DEFAULT_LISTEN), () => ({ ...DEFAULT_LISTEN })),
  admin: adminSchema,
  security: z._default(z.strictObject({
    allowedHosts: z._default(z.array(nonEmpty), []),
    allowedOrigins: z._default(z.array(nonEmpty), []),
    clientKey: z.optional(nonEmpty)
  }), { allowedHosts: [], allowedOrigins: [] }),
  tokens: z._default(z.strictObject({
    /** Share of a token's lifetime after which it is renewed in the background. */
    refreshAhead: z._default(z.number().check(z.gt(0), z.lt(1)), 0.8),
    /** A token is usable until this many seconds before it expires. */
    minValidity: z._default(z.number().check(z.gte(0)), 30),
    /** Lifetime assumed when neither `expires_in` nor a JWT `exp` says. */
    defaultTtl: z._default(z.number().check(z.positive()), 3600),
    maxRequestsPerMinute: z._default(z.number().check(z.int(), z.positive()), 30)
  }), { refreshAhead: 0.8, minValidity: 30, defaultTtl: 3600, maxRequestsPerMinute: 30 }),
  /** On SIGTERM / SIGINT, in-flight requests get this long (ms) to finish. */
  shutdownGrace: z._default(z.number().check(z.int(), z.gte(0)), 10_000),
  /** Short for `store: { type: file, dir }`. */
  stateDir: z.optional(nonEmpty),
  store: z.optional(storeSchema),
  /** Encrypts the entries of the store, file or Redis (JWE dir + A256GCM); use a secret reference. */
  stateKey: z.optional(nonEmpty),
  routes: z.record(z.string().check(z.regex(ROUTE_NAME, 'route names are letters, digits, "_", "." and "-"')), routeSchema)
    .check(z.refine((r) => Object.keys(r).length > 0, 'at least one route is required'))
}).check(z.superRefine((config, ctx) => {
  if (config.stateDir !== undefined && config.store !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['stateDir'], message: 'cannot be combined with store (stateDir is short for store: { type: file, dir }): give one of them' })
  }
  const seen = new Map<string, string>()
  for (const [name, route] of Object.entries(config.routes)) {
    const p = route.prefix ?? `/${name}`
    const other = seen.get(p)
    if (other !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['routes', name, 'prefix'], message: `"${p}" is already the prefix of route "${other}"` })
    }
    seen.set(p, name)
  }
}))

export type ConfigInput = z.input<typeof configSchema>
export type ParsedConfig = z.output<typeof configSchema>
export type RouteConfig = z.output<typeof routeSchema> & {
  name: string
  prefix: string
  upstream: string
  /** Values of the auth block that came from secret references: secrets whatever option carries them. */
  referencedSecrets: string[]
  /** Options of the auth block given as one `${file:PATH}` reference (`subjectToken` → its file): read again where a scheme wants the newest. */
  secretFiles: Record<string, string>
}
export type FileStoreConfig = { type: 'file', dir: string }
export type { RedisStoreConfig, TokenSettings }
/** A store beyond the process; none (undefined) keeps tokens in memory. */
export type StoreConfig = FileStoreConfig | RedisStoreConfig
/**
 * The validated config. `store` is the one source of where tokens live;
 * `stateDir` is kept equal to a file store's dir (absolute), whichever way
 * the file gave it.
 */
export type Config = Omit<ParsedConfig, 'routes' | 'store'> & { routes: RouteConfig[], store: StoreConfig | undefined }
