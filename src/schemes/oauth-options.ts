import { z } from 'zod'
import { clientAssertionJwt, clientSecretBasic, clientSecretPost, publicClient, type ClientAuth } from '../auth/client-auth.js'
import { privateSigningKey, secretSigningKey } from '../auth/keys.js'
import { createOAuthClient, type OAuthClient } from '../auth/oauth-client.js'
import { OAuthEndpoints, type EndpointUrls } from '../auth/oauth-endpoints.js'
import { authSecrets, Redactor } from '../auth/redaction.js'
import { LoginRequired } from '../auth/token-error.js'
import { bodyEncoding, httpUrl, nonEmpty, privateKey, tokenTimeout } from '../fields.js'
import type { SchemeContext } from './scheme.js'

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt', 'none'] as const
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number]

/** Client options shared by every RFC 6749 grant (SPEC "auth types"). */
export const clientOptions = {
  /** Optional with `issuer`: then read from its metadata (RFC 8414). */
  tokenUrl: httpUrl.optional(),
  /** The authorization server: every endpoint not given is read from its metadata, once, at first need. */
  issuer: httpUrl.optional(),
  /** RFC 7009 revocation endpoint, used by `logout` (else from the issuer's metadata). */
  revocationUrl: httpUrl.optional(),
  clientId: nonEmpty.optional(),
  clientSecret: nonEmpty.optional(),
  /** Defaults: private_key_jwt with privateKey, client_secret_post with a JSON body (Auth0 style), else client_secret_basic. */
  clientAuth: z.enum(CLIENT_AUTH_METHODS).optional(),
  privateKey: privateKey.optional(),
  /** JWS algorithm of client assertions; default from the key (RS256, ES256, EdDSA) or HS256 for client_secret_jwt. */
  alg: nonEmpty.optional(),
  bodyEncoding: bodyEncoding.default('form'),
  scope: z.union([z.string(), z.array(z.string())]).optional(),
  audience: nonEmpty.optional(),
  params: z.record(z.string(), z.string()).default({}),
  timeout: tokenTimeout
}

export type ClientOptions = z.output<z.ZodObject<typeof clientOptions>>

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
  if (role.keySignsGrant === true) return options.clientSecret !== undefined ? 'client_secret_basic' : 'none'
  if (options.privateKey !== undefined) return 'private_key_jwt'
  if (options.clientSecret === undefined) return 'none'
  // Endpoints that take JSON (Auth0 style) read the client's credentials from the body.
  return options.bodyEncoding === 'json' ? 'client_secret_post' : 'client_secret_basic'
}

/** What the chosen method needs, as config issues under the auth block (for a schema's superRefine). */
export function checkClientAuth (role: ClientRole = {}) {
  return (options: ClientOptions, ctx: z.RefinementCtx): void => {
    const method = clientAuthMethod(options, role)
    const issue = (key: string, message: string): void => { ctx.addIssue({ code: 'custom', path: [key], message }) }
    if (options.tokenUrl === undefined && options.issuer === undefined) issue('tokenUrl', 'is required (or issuer, to read it from the authorization server\'s metadata)')
    if (method !== 'none' && options.clientId === undefined) issue('clientId', `is required for ${method}`)
    if ((method === 'client_secret_basic' || method === 'client_secret_post' || method === 'client_secret_jwt') && options.clientSecret === undefined) {
      issue('clientSecret', `is required for ${method}`)
    }
    if (method === 'private_key_jwt' && options.privateKey === undefined) issue('privateKey', 'is required for private_key_jwt')
  }
}

/** The client authentication of these options, made once with its credentials. */
export function clientAuthFor (options: ClientOptions, where: string, role: ClientRole = {}): ClientAuth {
  const method = clientAuthMethod(options, role)
  const clientId = options.clientId ?? ''
  // The grant's own `alg` is the assertion key's, not the client's.
  const alg = role.keySignsGrant === true ? undefined : options.alg
  switch (method) {
    case 'client_secret_basic': return clientSecretBasic(clientId, options.clientSecret ?? '')
    case 'client_secret_post': return clientSecretPost(clientId, options.clientSecret ?? '')
    case 'private_key_jwt': return clientAssertionJwt(clientId, privateSigningKey(options.privateKey ?? '', alg, `${where}.privateKey`))
    case 'client_secret_jwt': return clientAssertionJwt(clientId, secretSigningKey(options.clientSecret ?? '', alg))
    case 'none': return publicClient(options.clientId)
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
  return createOAuthClient({
    tokenUrl: endpoints.key,
    endpoints,
    clientAuth: clientAuthFor(options, context.where, role),
    bodyEncoding: options.bodyEncoding,
    extras: role.userLogin === true ? {} : requestExtras(options),
    timeout: options.timeout,
    secrets: Redactor.of(authSecrets(options, context.referenced))
  })
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
