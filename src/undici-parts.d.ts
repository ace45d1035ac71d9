// undici's files loaded one by one (src/auth/undici-parts.ts), typed from its published types.
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici'
  export default Agent
}

declare module 'undici/lib/core/errors.js' {
  import { errors } from 'undici'
  export default errors
}

declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici'
  export default function request (this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>
}

declare module 'undici/lib/global.js' {
  import type { getGlobalDispatcher } from 'undici'
  const global: { getGlobalDispatcher: typeof getGlobalDispatcher }
  export default global
}

declare module 'undici/lib/core/util.js' {
  const util: { parseURL (url: string | URL): URL }
  export default util
}
