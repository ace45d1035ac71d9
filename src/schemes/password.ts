import * as z from 'zod'
import { refreshWith } from '../auth/oauth-client.js'
import { nonEmpty } from '../fields.js'
import { checkClientAuth, clientOptions, oauthClient, tokenUse } from './oauth-options.js'
import type { Scheme } from './scheme.js'

const options = z.strictObject({
  type: z.literal('password'),
  ...clientOptions,
  username: nonEmpty,
  password: nonEmpty
}).superRefine(checkClientAuth())

/** RFC 6749 §4.3 resource owner password credentials grant. */
export const passwordScheme: Scheme<typeof options> = {
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
