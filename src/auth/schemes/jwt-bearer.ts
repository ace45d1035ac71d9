import type { AuthConfigOf } from '../../config/schema.js'
import { privateSigningKey, secretSigningKey } from '../keys.js'
import { createOAuthClient, signAssertion } from '../oauth-client.js'
import { authSecrets, Redactor } from '../redaction.js'
import { bearer, type AuthScheme } from '../scheme.js'
import { refreshWith } from './refresh-token.js'

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/**
 * RFC 7523 §2.1: a JWT signed with our key is the authorization grant.
 * `iss` and `sub` default to the client id, `aud` to the token endpoint;
 * `claims` adds or overrides any of them.
 */
export function jwtBearerScheme (config: AuthConfigOf<'jwt_bearer'>, where: string): AuthScheme {
  const key = config.privateKey !== undefined
    ? privateSigningKey(config.privateKey, config.alg, `${where}.privateKey`)
    : secretSigningKey(config.secret ?? '', config.alg)
  // The assertion key is not a client-authentication key: client auth here is by secret or none.
  const client = createOAuthClient({ ...config, privateKey: undefined }, where, Redactor.of(authSecrets(config)))
  const claims: Record<string, unknown> = { aud: config.tokenUrl, ...(config.clientId === undefined ? {} : { iss: config.clientId, sub: config.clientId }), ...config.claims }
  return {
    type: 'jwt_bearer',
    endpoint: client.endpoint,
    secrets: client.secrets,
    obtain: async (signal) => client.grant({ grant_type: JWT_BEARER_GRANT, assertion: await signAssertion(key, claims, config.assertionTtl) }, signal),
    refresh: refreshWith(client),
    authorize: bearer
  }
}
