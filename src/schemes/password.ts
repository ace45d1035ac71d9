import * as z from 'zod/mini'
import { refreshWith } from '../auth/oauth-client.js'
import { nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, tokenUse } from './oauth-options.js'
import { built, type Scheme } from './scheme.js'

const options = built(() => z.strictObject({
  type: z.literal('password'),
  ...clientOptions,
  username: nonEmpty,
  password: nonEmpty
}).check(z.superRefine(checkClientAuth())))

/** RFC 6749 §4.3 resource owner password credentials grant. */
export const passwordScheme: Scheme<ReturnType<typeof options>> = {
  type: 'password',
  options,
  create (config, context) {
    const client = oauthClient(config, context)
    return {
      source: {
        type: 'password',
        endpoint: client.endpoint,
        secrets: client.secrets,
        obtain: (signal) => client.grant({ grant_type: 'password', username: config.username, password: config.password }, signal),
        refresh: refreshWith(client),
        revoke: client.revoke
      },
      ...tokenUse(client)
    }
  }
}
