import * as z from 'zod/mini'
import { refreshWith } from '../auth/oauth-client.js'
import { secretReader } from '../auth/secret-file.js'
import { nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, tokenUse } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 §3: what a workload identity token (Kubernetes, SPIFFE, CI OIDC) is. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'

/** A token type identifier (RFC 8693 §3): a URI such as `urn:ietf:params:oauth:token-type:access_token`. */
const tokenType = nonEmpty.check(z.refine((v) => /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(v), 'must be a token type URI, e.g. urn:ietf:params:oauth:token-type:jwt'))

const options = built(() => z.strictObject({
  type: z.literal('token_exchange'),
  ...clientOptions,
  /** The token exchanged; as one `${file:...}` reference it is read again for every exchange. */
  subjectToken: nonEmpty,
  subjectTokenType: z._default(tokenType, JWT_TOKEN_TYPE),
  /** Delegation (RFC 8693 §1.1): the party acting for the subject; read again like subjectToken. */
  actorToken: z.optional(nonEmpty),
  /** Default, with actorToken: a JWT. */
  actorTokenType: z.optional(tokenType),
  /** Where the token will be used (RFC 8693 §2.1, RFC 8707): an absolute URI. */
  resource: z.optional(nonEmpty.check(z.refine((v) => URL.canParse(v) && !v.includes('#'), 'must be an absolute URI without a fragment'))),
  requestedTokenType: z.optional(tokenType)
}).check(z.superRefine(checkClientAuth()), z.superRefine((config, ctx) => {
  if (config.actorTokenType !== undefined && config.actorToken === undefined) {
    ctx.addIssue({ code: 'custom', path: ['actorTokenType'], message: 'is given without actorToken' })
  }
})))

/**
 * RFC 8693 token exchange: a subject token in (usually a workload identity
 * that another process renews in a file), a token for the API out. The
 * subject and actor tokens are read again for every exchange, so a rotated
 * one is used from the next token request on.
 */
export const tokenExchangeScheme: Scheme<ReturnType<typeof options>> = {
  type: 'token_exchange',
  options,
  create (config, context) {
    const client = oauthClient(config, context)
    const files = context.files ?? {}
    const subjectToken = secretReader(config.subjectToken, files.subjectToken, `${context.where}.subjectToken`)
    const actorToken = config.actorToken === undefined ? undefined : secretReader(config.actorToken, files.actorToken, `${context.where}.actorToken`)
    return {
      source: {
        type: 'token_exchange',
        endpoint: client.endpoint,
        secrets: client.secrets,
        // async: a subject token file that cannot be read rejects the promise, as a failed request does.
        obtain: async (signal) => {
          const params: Record<string, string> = {
            grant_type: TOKEN_EXCHANGE_GRANT,
            subject_token: subjectToken(),
            subject_token_type: config.subjectTokenType
          }
          if (actorToken !== undefined) {
            params.actor_token = actorToken()
            params.actor_token_type = config.actorTokenType ?? JWT_TOKEN_TYPE
          }
          if (config.resource !== undefined) params.resource = config.resource
          if (config.requestedTokenType !== undefined) params.requested_token_type = config.requestedTokenType
          return await client.grant(params, signal)
        },
        refresh: refreshWith(client)
      },
      ...tokenUse(client)
    }
  }
}
