import { z } from 'zod'
import { decodeNetosecret } from '../auth/schemes/netosecret.js'

/**
 * The config schema is the single source of the config type: defaults from
 * SPEC.md "Config" live here and nowhere else.
 */

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

function isHttpUrl (value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}

const httpUrl = z.string().refine(isHttpUrl, 'must be an absolute http(s) URL')
const nonEmpty = z.string().min(1, 'must not be empty')
const positiveMs = z.number().int().positive()

/** A private key as PEM text, a JWK object, or a JWK as JSON text. */
const privateKey = z.union([nonEmpty, z.record(z.string(), z.unknown())])

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt', 'none'] as const

/** Client options shared by every RFC 6749 grant (SPEC "auth types"). */
const clientOptions = {
  tokenUrl: httpUrl,
  clientId: nonEmpty.optional(),
  clientSecret: nonEmpty.optional(),
  /** Defaults: private_key_jwt with privateKey, client_secret_post with a JSON body (Auth0 style), else client_secret_basic. */
  clientAuth: z.enum(CLIENT_AUTH_METHODS).optional(),
  privateKey: privateKey.optional(),
  /** JWS algorithm of client assertions; default from the key (RS256, ES256, EdDSA) or HS256 for client_secret_jwt. */
  alg: nonEmpty.optional(),
  bodyEncoding: z.enum(['form', 'json']).default('form'),
  scope: z.union([z.string(), z.array(z.string())]).optional(),
  audience: nonEmpty.optional(),
  params: z.record(z.string(), z.string()).default({}),
  /** Token request timeout in ms: shorter than an upstream's, so a hung token endpoint fails first. */
  timeout: positiveMs.default(10_000)
}

const staticAuth = z.strictObject({
  type: z.literal('static'),
  token: nonEmpty.refine((v) => !/[^\t\x20-\x7e\x80-\xff]/.test(v), 'must not contain control characters or line breaks: it is sent in an HTTP header'),
  header: nonEmpty.default('authorization').transform((h) => h.toLowerCase()),
  scheme: z.string().default('Bearer')
})

const clientCredentialsAuth = z.strictObject({
  type: z.literal('client_credentials'),
  ...clientOptions
})

const passwordAuth = z.strictObject({
  type: z.literal('password'),
  ...clientOptions,
  username: nonEmpty,
  password: nonEmpty
})

const refreshTokenAuth = z.strictObject({
  type: z.literal('refresh_token'),
  ...clientOptions,
  refreshToken: nonEmpty
})

const jwtBearerAuth = z.strictObject({
  type: z.literal('jwt_bearer'),
  ...clientOptions,
  /** Signing key of the assertion (RFC 7523 §2.1); `secret` for HMAC algorithms. */
  secret: nonEmpty.optional(),
  claims: z.record(z.string(), z.unknown()).default({}),
  /** Lifetime of each assertion, seconds. */
  assertionTtl: z.number().int().positive().default(300)
})

const bodyEncoding = z.enum(['form', 'json'])
const loginAuth = z.strictObject({
  type: z.literal('login'),
  tokenUrl: httpUrl,
  bodyEncoding: bodyEncoding.default('json'),
  body: z.record(z.string(), z.unknown()).default({}),
  /** Extra request headers for the login and refresh calls (an API key some login endpoints want). */
  headers: z.record(z.string(), z.string()).default({}),
  /** `{{refresh_token}}` in the body stands for the current refresh token. */
  refresh: z.strictObject({
    url: httpUrl,
    bodyEncoding: bodyEncoding.optional(),
    body: z.record(z.string(), z.unknown()).default({ refresh_token: '{{refresh_token}}' })
  }).optional(),
  response: z.strictObject({
    accessToken: nonEmpty.default('access_token'),
    expiresIn: nonEmpty.default('expires_in'),
    refreshToken: nonEmpty.default('refresh_token'),
    refreshExpiresIn: nonEmpty.default('refresh_expires_in')
  }).default({ accessToken: 'access_token', expiresIn: 'expires_in', refreshToken: 'refresh_token', refreshExpiresIn: 'refresh_expires_in' }),
  header: nonEmpty.default('authorization').transform((h) => h.toLowerCase()),
  scheme: z.string().default('Bearer'),
  timeout: positiveMs.default(10_000)
})

const netographyAuth = z.strictObject({
  type: z.literal('netography'),
  /** base64 of JSON {url, shortname, appname, appkey, sharedsecret}; decoded once here. */
  netosecret: nonEmpty.transform((text, ctx) => {
    const decoded = decodeNetosecret(text)
    if (typeof decoded === 'string') {
      ctx.addIssue({ code: 'custom', message: decoded })
      return z.NEVER
    }
    return decoded
  }),
  timeout: positiveMs.default(10_000)
})

export const AUTH_TYPES = ['static', 'client_credentials', 'password', 'refresh_token', 'jwt_bearer', 'login', 'netography'] as const

export const authSchema = z.discriminatedUnion('type', [
  staticAuth,
  clientCredentialsAuth,
  passwordAuth,
  refreshTokenAuth,
  jwtBearerAuth,
  loginAuth,
  netographyAuth
], { error: (issue) => issue.code === 'invalid_union' ? `must be one of: ${AUTH_TYPES.join(', ')}` : undefined })

const prefix = z.string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'must be a path starting with "/" made of plain URL characters (no "%", "?", "#" or spaces)')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not contain "." or ".." segments')
  .refine((p) => !p.includes('//'), 'must not contain "//"')
  .transform((p) => p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p)

const routeSchema = z.strictObject({
  prefix: prefix.optional(),
  /** Optional only for `netography`, whose secret names the API. */
  upstream: httpUrl
    .refine((u) => { const url = new URL(u); return url.search === '' && url.hash === '' }, 'must not carry a query or fragment')
    // It is shown in logs and /routes; credentials belong in `auth`.
    .refine((u) => { const url = new URL(u); return url.username === '' && url.password === '' }, 'must not carry user:password (put credentials in auth)')
    .optional(),
  /** Upstream statuses that mean "token rejected": drop the token, get a new one, replay once. */
  retryOn: z.array(z.number().int().min(400).max(599)).default([401]),
  /** Upstream response timeout, ms. */
  timeout: positiveMs.default(30_000),
  auth: authSchema
}).superRefine((route, ctx) => {
  if (route.upstream === undefined && route.auth.type !== 'netography') ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'is required' })
  const auth = route.auth
  if (auth.type === 'client_credentials' || auth.type === 'password' || auth.type === 'refresh_token' || auth.type === 'jwt_bearer') {
    for (const [key, message] of clientAuthIssues(auth)) ctx.addIssue({ code: 'custom', path: ['auth', key], message })
  }
  if (auth.type === 'jwt_bearer' && auth.privateKey === undefined && auth.secret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'privateKey'], message: 'privateKey or secret is required to sign the assertion' })
  }
})

const endpoint = (host: string, port: number) => z.strictObject({
  host: nonEmpty.default(host),
  port: z.number().int().min(0).max(65535).default(port)
})

export const configSchema = z.strictObject({
  listen: endpoint('127.0.0.1', 8080).default({ host: '127.0.0.1', port: 8080 }),
  admin: z.union([z.literal(false), endpoint('127.0.0.1', 9901)]).default({ host: '127.0.0.1', port: 9901 }),
  security: z.strictObject({
    allowedHosts: z.array(nonEmpty).default([]),
    allowedOrigins: z.array(nonEmpty).default([]),
    clientKey: nonEmpty.optional()
  }).default({ allowedHosts: [], allowedOrigins: [] }),
  tokens: z.strictObject({
    /** Share of a token's lifetime after which it is renewed in the background. */
    refreshAhead: z.number().gt(0).lt(1).default(0.8),
    /** A token is usable until this many seconds before it expires. */
    minValidity: z.number().min(0).default(30),
    /** Lifetime assumed when neither `expires_in` nor a JWT `exp` says. */
    defaultTtl: z.number().positive().default(3600),
    maxRequestsPerMinute: z.number().int().positive().default(30)
  }).default({ refreshAhead: 0.8, minValidity: 30, defaultTtl: 3600, maxRequestsPerMinute: 30 }),
  /** On SIGTERM / SIGINT, in-flight requests get this long (ms) to finish. */
  shutdownGrace: z.number().int().min(0).default(10_000),
  stateDir: nonEmpty.optional(),
  /** Encrypts the files in stateDir (JWE dir + A256GCM); use a secret reference. */
  stateKey: nonEmpty.optional(),
  routes: z.record(z.string().regex(ROUTE_NAME, 'route names are letters, digits, "_", "." and "-"'), routeSchema)
    .refine((r) => Object.keys(r).length > 0, 'at least one route is required')
}).superRefine((config, ctx) => {
  const seen = new Map<string, string>()
  for (const [name, route] of Object.entries(config.routes)) {
    const p = route.prefix ?? `/${name}`
    const other = seen.get(p)
    if (other !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['routes', name, 'prefix'], message: `"${p}" is already the prefix of route "${other}"` })
    }
    seen.set(p, name)
  }
})

export type ConfigInput = z.input<typeof configSchema>
export type ParsedConfig = z.output<typeof configSchema>
export type AuthConfig = z.output<typeof authSchema>
export type AuthType = AuthConfig['type']
export type AuthConfigOf<T extends AuthType> = Extract<AuthConfig, { type: T }>
export type RouteConfig = z.output<typeof routeSchema> & { name: string, prefix: string, upstream: string }
export type TokenSettings = ParsedConfig['tokens']
export type Config = Omit<ParsedConfig, 'routes'> & { routes: RouteConfig[] }

export type OAuthConfig = AuthConfigOf<'client_credentials' | 'password' | 'refresh_token' | 'jwt_bearer'>
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number]

/** The client authentication a grant uses (RFC 6749 §2.3): explicit, or from the options given. */
export function clientAuthMethod (config: Pick<OAuthConfig, 'type' | 'clientAuth' | 'clientSecret' | 'privateKey' | 'bodyEncoding'>): ClientAuthMethod {
  if (config.clientAuth !== undefined) return config.clientAuth
  // For jwt_bearer the private key signs the grant itself, not the client.
  if (config.type === 'jwt_bearer') return config.clientSecret !== undefined ? 'client_secret_basic' : 'none'
  if (config.privateKey !== undefined) return 'private_key_jwt'
  if (config.clientSecret === undefined) return 'none'
  // Endpoints that take JSON (Auth0 style) read the client's credentials from the body.
  return config.bodyEncoding === 'json' ? 'client_secret_post' : 'client_secret_basic'
}

/** What the chosen method needs, as [key, message] pairs. */
function clientAuthIssues (config: OAuthConfig): Array<[string, string]> {
  const method = clientAuthMethod(config)
  const issues: Array<[string, string]> = []
  if (method !== 'none' && config.clientId === undefined) issues.push(['clientId', `is required for ${method}`])
  if ((method === 'client_secret_basic' || method === 'client_secret_post' || method === 'client_secret_jwt') && config.clientSecret === undefined) {
    issues.push(['clientSecret', `is required for ${method}`])
  }
  if (method === 'private_key_jwt' && config.privateKey === undefined) issues.push(['privateKey', 'is required for private_key_jwt'])
  return issues
}
