import * as z from 'zod/mini'
import { authSecrets, Redactor } from '../auth/redaction.js'
import { tokenFormat } from '../auth/token-source.js'
import { headerName, headerValue } from '../fields.js'
import { built, type Scheme } from './scheme.js'

const options = built(() => z.strictObject({
  type: z.literal('static'),
  token: headerValue,
  header: headerName,
  scheme: z._default(z.string(), 'Bearer')
}))

/** A fixed API key: no token request, never expires, any header and scheme word. */
export const staticScheme: Scheme<ReturnType<typeof options>> = {
  type: 'static',
  options,
  create: (config, { referenced }) => ({
    source: {
      type: 'static',
      endpoint: undefined,
      secrets: Redactor.of(authSecrets(config, referenced)),
      obtain: async () => ({ accessToken: config.token, expiresIn: Infinity })
    },
    format: tokenFormat(config.header, config.scheme)
  })
}
