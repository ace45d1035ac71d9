import * as z from 'zod/mini'
import { refreshWith } from '../auth/oauth-client.js'
import { checkClientAuth, clientOptions, oauthClient, tokenUse } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const options = built(() => z.strictObject({
  type: z.literal('client_credentials'),
  ...clientOptions
}).check(z.superRefine(checkClientAuth())))

/** RFC 6749 §4.4 client credentials grant. */
export const clientCredentialsScheme: Scheme<ReturnType<typeof options>> = {
  type: 'client_credentials',
  options,
  create (config, context) {
    const client = oauthClient(config, context)
    return {
      source: {
        type: 'client_credentials',
        endpoint: client.endpoint,
        secrets: client.secrets,
        obtain: (signal) => client.grant({ grant_type: 'client_credentials' }, signal),
        refresh: refreshWith(client),
        revoke: client.revoke
      },
      ...tokenUse(client)
    }
  }
}
