import type { Dispatcher } from 'undici'
import Agent from 'undici/lib/dispatcher/agent.js'
import errors from 'undici/lib/core/errors.js'
import dispatchRequest from 'undici/lib/api/api-request.js'
import undiciGlobal from 'undici/lib/global.js'
import undiciUtil from 'undici/lib/core/util.js'

/**
 * The parts of undici this program uses: the connection pools (`Agent`), the
 * promise `request` and its error classes. undici's index also builds its
 * fetch, WebSocket, EventSource, cache and mocks whenever it is loaded, and
 * touches the global `File` and `Headers`, which loads Node's own copy of
 * undici as well: a server that never used them paid for both at start-up.
 */
export { Agent, errors }

/** undici's `request(url, options)`: over `options.dispatcher`, else undici's global one. */
export async function request (url: string | URL, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher?: Dispatcher }): Promise<Dispatcher.ResponseData> {
  const parsed = undiciUtil.parseURL(url)
  const { dispatcher = undiciGlobal.getGlobalDispatcher(), ...rest } = options
  return await dispatchRequest.call(dispatcher, {
    ...rest,
    origin: parsed.origin,
    path: parsed.search === '' ? parsed.pathname : `${parsed.pathname}${parsed.search}`
  })
}
