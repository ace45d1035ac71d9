import * as z from 'zod/mini'
import { deviceCodeLogin } from '../auth/device-code-login.js'
import { httpUrl, nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, requestExtras, urlOrIssuer, userLoginParts } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const ROLE = { userLogin: true }

const options = built(() => z.strictObject({
  type: z.literal('device_code'),
  ...clientOptions,
  /** The device authorization request names the client: required even for a public one. */
  clientId: nonEmpty,
  /** Optional with `issuer`: then read from its metadata. */
  deviceAuthorizationUrl: z.optional(httpUrl)
}).check(z.superRefine(checkClientAuth(ROLE)), z.superRefine(urlOrIssuer('deviceAuthorizationUrl'))))

/**
 * RFC 8628 device authorization grant, then refresh tokens (RFC 6749 §6). A
 * person logs in once with `bearer-proxy login`, on any device; `scope`,
 * `audience` and `params` go on the device authorization request only.
 */
export const deviceCodeScheme: Scheme<ReturnType<typeof options>> = {
  type: 'device_code',
  options,
  userLogin: true,
  create (config, context) {
    const client = oauthClient(config, context, ROLE)
    const { scope, ...params } = requestExtras(config)
    return userLoginParts('device_code', client, context, async (prompt, signal) => {
      const deviceAuthorizationUrl = await client.endpoints.url('deviceAuthorizationUrl', signal)
      const tokenUrl = await client.endpoints.url('tokenUrl', signal)
      return deviceCodeLogin({
        deviceAuthorizationUrl,
        ...(scope === undefined ? {} : { scope }),
        params,
        clientAuth: client.clientAuth,
        tokenUrl,
        grant: (fields, pollSignal) => client.grant(fields, pollSignal),
        present: (p) => prompt.showCode(p),
        timeoutMs: config.timeout,
        secrets: client.secrets,
        ...(client.dispatcher === undefined ? {} : { dispatcher: client.dispatcher }),
        signal
      })
    })
  }
}
