import * as z from 'zod/mini'
import { signAssertion } from '../auth/jwt-assertion.js'
import { privateSigningKey, secretSigningKey } from '../auth/keys.js'
import { refreshWith } from '../auth/oauth-client.js'
import { nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, tokenUse } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** The private key signs the grant itself: client authentication is by secret or none. */
const ROLE = { keySignsGrant: true }

const options = built(() => z.strictObject({
  type: z.literal('jwt_bearer'),
  ...clientOptions,
  /** Signing key of the assertion (RFC 7523 §2.1); `secret` for HMAC algorithms. */
  secret: z.optional(nonEmpty),
  claims: z._default(z.record(z.string(), z.unknown()), {}),
  /** Lifetime of each assertion, seconds. */
  assertionTtl: z._default(z.number().check(z.int(), z.positive()), 300)
}).check(z.superRefine(checkClientAuth(ROLE)), z.superRefine((config, ctx) => {
  if (config.privateKey === undefined && config.secret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'privateKey or secret is required to sign the assertion' })
  }
})))

/**
 * RFC 7523 §2.1: a JWT signed with our key is the authorization grant.
 * `iss` and `sub` default to the client id, `aud` to the token endpoint;
 * `claims` adds or overrides any of them.
 */
export const jwtBearerScheme: Scheme<ReturnType<typeof options>> = {
  type: 'jwt_bearer',
  options,
  create (config, context) {
    const key = config.privateKey !== undefined
      ? privateSigningKey(config.privateKey, config.alg, `${context.where}.privateKey`)
      : secretSigningKey(config.secret ?? '', config.alg)
    const client = oauthClient(config, context, ROLE)
    const claims = async (signal: AbortSignal): Promise<Record<string, unknown>> => ({
      aud: await client.endpoints.url('tokenUrl', signal),
      ...(config.clientId === undefined ? {} : { iss: config.clientId, sub: config.clientId }),
      ...config.claims
    })
    return {
      source: {
        type: 'jwt_bearer',
        endpoint: client.endpoint,
        secrets: client.secrets,
        obtain: async (signal) => client.grant({ grant_type: JWT_BEARER_GRANT, assertion: await signAssertion(key, await claims(signal), config.assertionTtl) }, signal),
        refresh: refreshWith(client),
        revoke: client.revoke
      },
      ...tokenUse(client)
    }
  }
}
