import * as z from 'zod/mini'
import { refreshWith } from '../auth/oauth-client.js'
import { nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, tokenUse } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const options = built(() => z.strictObject({
  type: z.literal('refresh_token'),
  ...clientOptions,
  refreshToken: nonEmpty
}).check(z.superRefine(checkClientAuth())))

/**
 * A long-lived refresh token as the credential. The configured one is only the
 * seed: once the server rotates it, the broker holds (and persists) the new one
 * and obtains through `refresh`.
 */
export const refreshTokenScheme: Scheme<ReturnType<typeof options>> = {
  type: 'refresh_token',
  options,
  create (config, context) {
    const client = oauthClient(config, context)
    const refresh = refreshWith(client)
    return {
      source: {
        type: 'refresh_token',
        endpoint: client.endpoint,
        secrets: client.secrets,
        obtain: (signal) => refresh(config.refreshToken, signal),
        refresh,
        revoke: client.revoke
      },
      ...tokenUse(client)
    }
  }
}
