import * as z from 'zod/mini'
import { authorizationCodeLogin } from '../auth/authorization-code-login.js'
import { httpUrl, nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, requestExtras, urlOrIssuer, userLoginParts } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const ROLE = { userLogin: true }

const options = built(() => z.strictObject({
  type: z.literal('authorization_code'),
  ...clientOptions,
  /** The authorization request names the client: required even for a public one. */
  clientId: nonEmpty,
  /** Optional with `issuer`: then read from its metadata. */
  authorizationUrl: z.optional(httpUrl),
  /** Loopback port of the redirect (`http://127.0.0.1:PORT/callback`); 0: any free one (RFC 8252 §7.3). */
  redirectPort: z._default(z.number().check(z.int(), z.gte(0), z.lte(65535)), 0)
}).check(z.superRefine(checkClientAuth(ROLE)), z.superRefine(urlOrIssuer('authorizationUrl'))))

/**
 * RFC 6749 §4.1 with PKCE S256 and a loopback redirect, then refresh tokens
 * (RFC 6749 §6). A person logs in once with `bearer-proxy login`; `params`,
 * `scope` and `audience` go on the authorization request only.
 */
export const authorizationCodeScheme: Scheme<ReturnType<typeof options>> = {
  type: 'authorization_code',
  options,
  userLogin: true,
  create (config, context) {
    const client = oauthClient(config, context, ROLE)
    const { scope, ...params } = requestExtras(config)
    return userLoginParts('authorization_code', client, context, async (prompt, signal) => {
      const authorizationUrl = await client.endpoints.url('authorizationUrl', signal)
      const metadata = await client.endpoints.metadata(signal)
      return authorizationCodeLogin({
        authorizationUrl,
        clientId: config.clientId,
        ...(scope === undefined ? {} : { scope }),
        params,
        redirectPort: config.redirectPort,
        present: (url) => prompt.openUrl(url),
        grant: (fields, grantSignal) => client.grant(fields, grantSignal),
        // RFC 9207: an `iss` in the callback must name this issuer; required when its metadata says it always sends one.
        ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
        issRequired: metadata?.authorizationResponseIssParameterSupported === true,
        signal
      })
    })
  }
}
