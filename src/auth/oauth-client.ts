import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { clientAuthMethod, type OAuthConfig } from '../config/schema.js'
import { privateSigningKey, secretSigningKey, type SigningKey } from './keys.js'
import { authSecrets, Redactor } from './redaction.js'
import type { TokenResponse } from './token.js'
import { requestToken } from './token-endpoint.js'

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** Lifetime of a client assertion (RFC 7523 §3): short, it is used once. */
const CLIENT_ASSERTION_TTL = 60

/**
 * A client of one token endpoint: sends a grant with the configured client
 * authentication (RFC 6749 §2.3, RFC 7523 §2.2 / OIDC Core §9) and the
 * shared extras (scope, audience, params).
 */
export interface OAuthClient {
  readonly endpoint: string
  /** Every secret of the route's auth block, in every encoding (built once). */
  readonly secrets: Redactor
  grant (params: Record<string, string>, signal: AbortSignal): Promise<TokenResponse>
}

/** `secrets`: when the scheme passes a config it has trimmed, those of the whole auth block. */
export function createOAuthClient (config: OAuthConfig, where: string, secrets = Redactor.of(authSecrets(config))): OAuthClient {
  const method = clientAuthMethod(config)
  let assertionKey: SigningKey | undefined
  if (method === 'private_key_jwt') assertionKey = privateSigningKey(config.privateKey ?? '', config.type === 'jwt_bearer' ? undefined : config.alg, `${where}.privateKey`)
  if (method === 'client_secret_jwt') assertionKey = secretSigningKey(config.clientSecret ?? '', config.type === 'jwt_bearer' ? undefined : config.alg)
  const extras: Record<string, string> = { ...config.params }
  const scope = Array.isArray(config.scope) ? config.scope.join(' ') : config.scope
  if (scope !== undefined && scope !== '') extras.scope = scope
  if (config.audience !== undefined) extras.audience = config.audience

  return {
    endpoint: config.tokenUrl,
    secrets,
    async grant (params, signal) {
      const body: Record<string, string> = { ...params, ...extras }
      const headers: Record<string, string> = {}
      const clientId = config.clientId
      switch (method) {
        case 'client_secret_basic':
          // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
          headers.authorization = `Basic ${Buffer.from(`${formPart(clientId ?? '')}:${formPart(config.clientSecret ?? '')}`).toString('base64')}`
          break
        case 'client_secret_post':
          body.client_id = clientId ?? ''
          body.client_secret = config.clientSecret ?? ''
          break
        case 'private_key_jwt':
        case 'client_secret_jwt':
          body.client_id = clientId ?? ''
          body.client_assertion_type = CLIENT_ASSERTION_TYPE
          body.client_assertion = await clientAssertion(assertionKey as SigningKey, clientId ?? '', config.tokenUrl)
          break
        case 'none':
          if (clientId !== undefined) body.client_id = clientId
          break
      }
      return requestToken({ url: config.tokenUrl, encoding: config.bodyEncoding, body, headers, timeout: config.timeout, secrets, signal })
    }
  }
}

/** A signed JWT with the usual registered claims; the jti is fresh every time so replays are detectable. */
export async function signAssertion (key: SigningKey, claims: Record<string, unknown>, ttlSeconds: number): Promise<string> {
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader(key.kid === undefined ? { alg: key.alg, typ: 'JWT' } : { alg: key.alg, typ: 'JWT', kid: key.kid })
    .setIssuedAt()
    .setJti(randomUUID())
  if (claims.exp === undefined) jwt.setExpirationTime(`${ttlSeconds}s`)
  return jwt.sign(key.key)
}

function clientAssertion (key: SigningKey, clientId: string, tokenUrl: string): Promise<string> {
  return signAssertion(key, { iss: clientId, sub: clientId, aud: tokenUrl }, CLIENT_ASSERTION_TTL)
}

function formPart (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}
