import { z } from 'zod'
import { clientAssertionJwt, clientSecretBasic, clientSecretPost, publicClient, type ClientAuth } from '../auth/client-auth.js'
import { DPOP_ALGS, DpopProver } from '../auth/dpop.js'
import { privateSigningKey, secretSigningKey } from '../auth/keys.js'
import { createOAuthClient, type OAuthClient } from '../auth/oauth-client.js'
import { authSecrets, Redactor } from '../auth/redaction.js'
import { bodyEncoding, httpUrl, nonEmpty, privateKey, tokenTimeout } from '../fields.js'
import { BEARER } from '../auth/token-source.js'
import type { SchemeContext, SchemeParts } from './scheme.js'

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt', 'none'] as const
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number]

/** Client options shared by every RFC 6749 grant (SPEC "auth types"). */
export const clientOptions = {
  tokenUrl: httpUrl,
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
  timeout: tokenTimeout,
  /** RFC 9449 sender-constrained tokens: `true`, or the proof key's `alg` (default ES256, or the key's) and an optional `key`. */
  dpop: z.preprocess(
    // `true` is every default, `false` none: the object's own checks then name what is wrong in it.
    (value) => value === true ? {} : value === false ? undefined : value,
    z.strictObject({ alg: z.enum(DPOP_ALGS).optional(), key: privateKey.optional() }).optional()
  )
}

export type ClientOptions = z.output<z.ZodObject<typeof clientOptions>>

/**
 * How the grant's client authenticates. `keySignsGrant`: the private key
 * signs the grant itself (jwt_bearer), so it is not a client key and client
 * authentication is by secret or none.
 */
export interface ClientRole {
  keySignsGrant?: boolean
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

/** The OAuth client of a grant's options: its client authentication, extras and secrets. */
export function oauthClient (options: ClientOptions, context: SchemeContext, role: ClientRole = {}): OAuthClient {
  const extras: Record<string, string> = { ...options.params }
  const scope = Array.isArray(options.scope) ? options.scope.join(' ') : options.scope
  if (scope !== undefined && scope !== '') extras.scope = scope
  if (options.audience !== undefined) extras.audience = options.audience
  const dpopKey = options.dpop?.key
  return createOAuthClient({
    tokenUrl: options.tokenUrl,
    clientAuth: clientAuthFor(options, context.where, role),
    bodyEncoding: options.bodyEncoding,
    extras,
    timeout: options.timeout,
    // A DPoP key given inline is as secret as a client's private key.
    secrets: Redactor.of([...authSecrets(options, context.referenced), ...(dpopKey === undefined ? [] : authSecrets({ privateKey: dpopKey }, []))]),
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
