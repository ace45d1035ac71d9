import * as z from 'zod/mini'
import { clientAssertion, clientAssertionJwt, clientSecretBasic, clientSecretPost, publicClient, tlsClientAuth, type ClientAuth } from '../auth/client-auth.js'
import { DPOP_ALGS, DpopProver } from '../auth/dpop.js'
import { privateSigningKey, secretSigningKey } from '../auth/keys.js'
import { createOAuthClient, refreshWith, type OAuthClient } from '../auth/oauth-client.js'
import { OAuthEndpoints, type EndpointUrls } from '../auth/oauth-endpoints.js'
import { authSecrets, Redactor } from '../auth/redaction.js'
import { secretReader } from '../auth/secret-file.js'
import { tlsDispatcher } from '../auth/tls-agent.js'
import { LoginRequired } from '../auth/token-error.js'
import { BEARER, type TokenSource } from '../auth/token-source.js'
import { bodyEncoding, httpUrl, nonEmpty, privateKey, tlsOptions, tokenTimeout } from '../fields.js'
import type { SchemeContext, SchemeParts } from './scheme.js'

export const CLIENT_AUTH_METHODS = [
  'client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt', 'none',
  // RFC 8705 §2: the client certificate of `tls` authenticates.
  'tls_client_auth', 'self_signed_tls_client_auth'
] as const
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number]

/** Client options shared by every RFC 6749 grant (SPEC "auth types"). */
export const clientOptions = {
  /** Optional with `issuer`: then read from its metadata (RFC 8414). */
  tokenUrl: z.optional(httpUrl),
  /** The authorization server: every endpoint not given is read from its metadata, once, at first need. */
  issuer: z.optional(httpUrl),
  /** RFC 7009 revocation endpoint, used by `logout` (else from the issuer's metadata). */
  revocationUrl: z.optional(httpUrl),
  clientId: z.optional(nonEmpty),
  clientSecret: z.optional(nonEmpty),
  /** Defaults: private_key_jwt with privateKey or clientAssertion, client_secret_post with a JSON body (Auth0 style), else client_secret_basic. */
  clientAuth: z.optional(z.enum(CLIENT_AUTH_METHODS)),
  privateKey: z.optional(privateKey),
  /** A JWT made elsewhere sent as the client assertion (RFC 7523 §2.2); as one `${file:...}` reference it is read again for every token request. */
  clientAssertion: z.optional(nonEmpty),
  /** Client certificate and added CAs for the token endpoint's connections; default: the route's `tls`. */
  tls: z.optional(tlsOptions),
  /** JWS algorithm of client assertions; default from the key (RS256, ES256, EdDSA) or HS256 for client_secret_jwt. */
  alg: z.optional(nonEmpty),
  bodyEncoding: z._default(bodyEncoding, 'form'),
  scope: z.optional(z.union([z.string(), z.array(z.string())])),
  audience: z.optional(nonEmpty),
  params: z._default(z.record(z.string(), z.string()), {}),
  timeout: tokenTimeout,
  /** RFC 9449 sender-constrained tokens: `true`, or the proof key's `alg` (default ES256, or the key's) and an optional `key`. */
  dpop: z.pipe(
    // `true` is every default, `false` none: the object's own checks then name what is wrong in it.
    z.transform((value: unknown) => value === true ? {} : value === false ? undefined : value),
    z.optional(z.strictObject({ alg: z.optional(z.enum(DPOP_ALGS)), key: z.optional(privateKey) }))
  )
}

export type ClientOptions = z.output<z.ZodMiniObject<typeof clientOptions>>

/**
 * How the grant's client authenticates. `keySignsGrant`: the private key
 * signs the grant itself (jwt_bearer), so it is not a client key and client
 * authentication is by secret or none.
 */
export interface ClientRole {
  keySignsGrant?: boolean
  /**
   * A user login (authorization_code, device_code): scope, audience and
   * params go on the authorization or device authorization request, where the
   * person consents to them; its grants (code exchange, polls, refresh) carry
   * none, as RFC 6749 §4.1.3 and RFC 8628 §3.4 define them.
   */
  userLogin?: boolean
}

/** The client authentication a grant uses (RFC 6749 §2.3): explicit, or from the options given. */
export function clientAuthMethod (options: ClientOptions, role: ClientRole = {}): ClientAuthMethod {
  if (options.clientAuth !== undefined) return options.clientAuth
  // An assertion from elsewhere is what private_key_jwt sends; its issuer holds the key.
  if (options.clientAssertion !== undefined) return 'private_key_jwt'
  if (role.keySignsGrant === true) return options.clientSecret !== undefined ? 'client_secret_basic' : 'none'
  if (options.privateKey !== undefined) return 'private_key_jwt'
  if (options.clientSecret === undefined) return 'none'
  // Endpoints that take JSON (Auth0 style) read the client's credentials from the body.
  return options.bodyEncoding === 'json' ? 'client_secret_post' : 'client_secret_basic'
}

/** What the chosen method needs, as config issues under the auth block (for a schema's superRefine). */
export function checkClientAuth (role: ClientRole = {}) {
  return (options: ClientOptions, ctx: z.core.$RefinementCtx): void => {
    const method = clientAuthMethod(options, role)
    const issue = (key: string, message: string): void => { ctx.addIssue({ code: 'custom', path: [key], message }) }
    if (options.tokenUrl === undefined && options.issuer === undefined) issue('tokenUrl', 'is required (or issuer, to read it from the authorization server\'s metadata)')
    // `login` gets the tokens in one process and `serve` sends them from another: both must hold the key they are bound to.
    if (role.userLogin === true && options.dpop !== undefined && options.dpop.key === undefined) {
      ctx.addIssue({ code: 'custom', path: ['dpop', 'key'], message: 'is required for a user login: the login command and serve must sign with the same key' })
    }
    const assertion = options.clientAssertion !== undefined
    // RFC 7523 §3: an assertion's `sub` names the client, so client_id may be left out.
    if (method !== 'none' && options.clientId === undefined && !(method === 'private_key_jwt' && assertion)) issue('clientId', `is required for ${method}`)
    if ((method === 'client_secret_basic' || method === 'client_secret_post' || method === 'client_secret_jwt') && options.clientSecret === undefined) {
      issue('clientSecret', `is required for ${method}`)
    }
    if (method === 'private_key_jwt' && options.privateKey === undefined && !assertion) issue('privateKey', 'is required for private_key_jwt')
    if (!assertion) return
    // Two ways to authenticate the client given at once: say which keys clash rather than pick one.
    if (method !== 'private_key_jwt') issue('clientAuth', `cannot be ${method} with clientAssertion (a client assertion is private_key_jwt)`)
    if (options.privateKey !== undefined && role.keySignsGrant !== true) issue('clientAssertion', 'cannot be combined with privateKey: give the assertion, or the key that signs one')
    if (options.clientSecret !== undefined) issue('clientAssertion', 'cannot be combined with clientSecret: the assertion authenticates the client')
  }
}

/**
 * The client authentication of these options, made once with its credentials.
 * `files`: options given as one `${file:...}` reference (SchemeContext.files).
 */
export function clientAuthFor (options: ClientOptions, where: string, role: ClientRole = {}, files: Readonly<Record<string, string>> = {}): ClientAuth {
  const method = clientAuthMethod(options, role)
  const clientId = options.clientId ?? ''
  if (options.clientAssertion !== undefined) return clientAssertion(options.clientId, secretReader(options.clientAssertion, files.clientAssertion, `${where}.clientAssertion`))
  // The grant's own `alg` is the assertion key's, not the client's.
  const alg = role.keySignsGrant === true ? undefined : options.alg
  switch (method) {
    case 'client_secret_basic': return clientSecretBasic(clientId, options.clientSecret ?? '')
    case 'client_secret_post': return clientSecretPost(clientId, options.clientSecret ?? '')
    case 'private_key_jwt': return clientAssertionJwt(clientId, privateSigningKey(options.privateKey ?? '', alg, `${where}.privateKey`))
    case 'client_secret_jwt': return clientAssertionJwt(clientId, secretSigningKey(options.clientSecret ?? '', alg))
    case 'none': return publicClient(options.clientId)
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
      if (options.tls?.cert === undefined) throw new Error(`${where}.tls: cert and key are required for ${method}`)
      return tlsClientAuth(clientId)
  }
}

/** `params`, `scope` and `audience` as request fields (scope space-separated). */
export function requestExtras (options: ClientOptions): Record<string, string> {
  const extras: Record<string, string> = { ...options.params }
  const scope = Array.isArray(options.scope) ? options.scope.join(' ') : options.scope
  if (scope !== undefined && scope !== '') extras.scope = scope
  if (options.audience !== undefined) extras.audience = options.audience
  return extras
}

/** The OAuth client of a grant's options: its client authentication, endpoints (configured or discovered), extras and secrets. */
export function oauthClient (options: ClientOptions & EndpointUrls, context: SchemeContext, role: ClientRole = {}): OAuthClient {
  const endpoints = new OAuthEndpoints({
    urls: { tokenUrl: options.tokenUrl, authorizationUrl: options.authorizationUrl, deviceAuthorizationUrl: options.deviceAuthorizationUrl, revocationUrl: options.revocationUrl },
    issuer: options.issuer,
    where: context.where,
    timeoutMs: options.timeout
  })
  const dpopKey = options.dpop?.key
  return createOAuthClient({
    tokenUrl: endpoints.key,
    endpoints,
    clientAuth: clientAuthFor(options, context.where, role, context.files),
    bodyEncoding: options.bodyEncoding,
    extras: role.userLogin === true ? {} : requestExtras(options),
    timeout: options.timeout,
    // A DPoP key given inline is as secret as a client's private key.
    secrets: Redactor.of([...authSecrets(options, context.referenced), ...(dpopKey === undefined ? [] : authSecrets({ privateKey: dpopKey }, []))]),
    dispatcher: options.tls === undefined ? undefined : tlsDispatcher(options.tls),
    dpop: dpopProver(options, context.where)
  })
}

/**
 * The route's DPoP key when `dpop` is on: the configured `key`, else a key
 * pair made now, which lives only in this process (its tokens are then never
 * persisted or shared: no other process could prove possession of them).
 */
function dpopProver (options: ClientOptions, where: string): DpopProver | undefined {
  const dpop = options.dpop
  if (dpop === undefined) return undefined
  if (dpop.key === undefined) return DpopProver.generate(dpop.alg)
  return DpopProver.fromKey(privateSigningKey(dpop.key, dpop.alg, `${where}.dpop.key`), `${where}.dpop`)
}

/** How a grant's token is sent: as a bearer token, or DPoP-bound with the client's key (RFC 9449 §7.1). */
export function tokenUse (client: OAuthClient): Pick<SchemeParts, 'format' | 'dpop'> {
  return client.dpop === undefined ? { format: BEARER } : { format: BEARER, dpop: client.dpop }
}

/**
 * The `obtain` of a user login (authorization_code, device_code): only a
 * person's `bearer-proxy login` gives it tokens. The broker never calls it (it
 * answers LOGIN_REQUIRED itself, with no budget spent); this is the backstop.
 */
export function loginOnly (context: SchemeContext): () => Promise<never> {
  const route = context.where.replace(/^routes\./, '').replace(/\.auth$/, '')
  return async () => { throw new LoginRequired(route) }
}

/** A user-login type's own endpoint option: required unless the issuer's metadata gives it (a superRefine). */
export function urlOrIssuer (key: 'authorizationUrl' | 'deviceAuthorizationUrl') {
  return (config: { issuer?: string | undefined } & { [K in typeof key]?: string | undefined }, ctx: z.core.$RefinementCtx): void => {
    if (config[key] === undefined && config.issuer === undefined) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'is required (or issuer, to read it from the authorization server\'s metadata)' })
    }
  }
}

/**
 * The parts of a user login (authorization_code, device_code): tokens only
 * from a person's `login`, then renewed with the refresh token and revoked at
 * `logout`; `login` runs the type's interactive grant.
 */
export function userLoginParts (type: string, client: OAuthClient, context: SchemeContext, login: NonNullable<TokenSource['login']>): SchemeParts {
  return {
    source: {
      type,
      endpoint: client.endpoint,
      secrets: client.secrets,
      obtain: loginOnly(context),
      refresh: refreshWith(client),
      revoke: client.revoke,
      login
    },
    ...tokenUse(client)
  }
}
