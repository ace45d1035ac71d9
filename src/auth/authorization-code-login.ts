import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { LoginError, printableText } from './login-error.js'
import { codeChallenge, codeVerifier, newState, sameState } from './pkce.js'
import type { TokenResponse } from './token.js'

/** How long the person has to log in before the listener gives up. */
export const DEFAULT_LOGIN_TIMEOUT_MS = 5 * 60_000
export const CALLBACK_PATH = '/callback'
/** RFC 8252 §7.3: the loopback IP literal, not `localhost`, which may resolve elsewhere or to IPv6. */
const LOOPBACK = '127.0.0.1'

export interface AuthorizationCodeLoginOptions {
  authorizationUrl: string
  clientId: string
  /** Space-separated. */
  scope?: string
  /** Extra authorization request fields (`audience`, `prompt`); never override the protocol's own. */
  params?: Record<string, string>
  /** Loopback port to listen on; 0 (default) takes any free one. */
  redirectPort?: number
  /** Hands the authorization URL to the person (printed, or opened in a browser). */
  present: (url: string) => void | Promise<void>
  /**
   * Exchanges the code at the token endpoint: the route's OAuth client, which
   * adds the client authentication (a public client puts `client_id` in the body).
   */
  grant: (params: Record<string, string>, signal: AbortSignal) => Promise<TokenResponse>
  /** ms to wait for the browser's callback; default 5 minutes. */
  timeoutMs?: number
  /** RFC 9207: the issuer an `iss` in the callback must name. */
  issuer?: string
  /** RFC 9207: the server always sends `iss` (its metadata says so), so a callback without it is refused. */
  issRequired?: boolean
  signal?: AbortSignal
}

/**
 * The interactive authorization code grant (RFC 6749 §4.1) for a native
 * client: PKCE S256 (RFC 7636), a `state` checked before anything else, and a
 * redirect to a listener on the loopback interface (RFC 8252 §7.3) that
 * serves one callback and closes. Resolves with the token endpoint's answer.
 */
export async function authorizationCodeLogin (options: AuthorizationCodeLoginOptions): Promise<TokenResponse> {
  const verifier = codeVerifier()
  const state = newState()
  const signal = options.signal ?? new AbortController().signal
  if (signal.aborted) throw new LoginError('aborted', 'login cancelled')
  const listener = await openListener(options.redirectPort ?? 0)
  const redirectUri = `http://${LOOPBACK}:${listener.port}${CALLBACK_PATH}`
  let callback: URLSearchParams
  try {
    const waiting = listener.next(options.timeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS, signal)
    const url = authorizationRequestUrl(options, { redirectUri, state, challenge: codeChallenge(verifier) })
    // The callback may come while present() still runs (a browser opener that waits for its page):
    // it is served at once; present() failing ends the login.
    const presenting = (async () => { await options.present(url) })()
    presenting.catch(() => {})
    const { query, res } = await Promise.race([waiting, presenting.then(() => waiting)])
    try {
      callback = checkCallback(query, state, options)
    } catch (err) {
      await sendPage(res, 400, FAILED_PAGE)
      throw err
    }
    await sendPage(res, 200, DONE_PAGE)
  } finally {
    await listener.close()
  }
  const code = callback.get('code') as string
  return options.grant({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, signal)
}

/**
 * The authorization request (RFC 6749 §4.1.1 with RFC 7636 §4.3). Extra
 * `params` go first, so none can replace the redirect URI, the state or the
 * challenge; a query already in `authorizationUrl` is kept.
 */
export function authorizationRequestUrl (options: Pick<AuthorizationCodeLoginOptions, 'authorizationUrl' | 'clientId' | 'scope' | 'params'>, request: { redirectUri: string, state: string, challenge: string }): string {
  const url = new URL(options.authorizationUrl)
  for (const [name, value] of Object.entries(options.params ?? {})) url.searchParams.set(name, value)
  if (options.scope !== undefined && options.scope !== '') url.searchParams.set('scope', options.scope)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', options.clientId)
  url.searchParams.set('redirect_uri', request.redirectUri)
  url.searchParams.set('state', request.state)
  url.searchParams.set('code_challenge', request.challenge)
  url.searchParams.set('code_challenge_method', 'S256')
  return url.href
}

/**
 * The callback's parameters, checked in this order: `state` first (RFC 6749
 * §10.12), so nothing of a redirect this login did not start (a forged code,
 * a forged error text) is used or shown; then `iss` (RFC 9207, the mix-up
 * defence); then the server's error, if any; then the code.
 */
function checkCallback (query: URLSearchParams, state: string, options: AuthorizationCodeLoginOptions): URLSearchParams {
  if (!sameState(query.get('state'), state)) {
    throw new LoginError('state_mismatch', 'the login callback carried a state this login did not send (a forged or stale redirect); nothing was exchanged: run login again')
  }
  const iss = query.get('iss')
  if (options.issuer !== undefined && (iss !== null || options.issRequired === true) && iss !== options.issuer) {
    throw new LoginError('issuer_mismatch', `the login callback ${iss === null ? 'does not name its authorization server' : 'names another authorization server'} (RFC 9207); nothing was exchanged`)
  }
  const error = query.get('error')
  if (error !== null) {
    const code = printableText(error, 64)
    const description = query.get('error_description')
    const detail = description === null || description === '' ? code : `${code}: ${printableText(description)}`
    const reason = error === 'access_denied' ? 'denied' : 'authorization_error'
    throw new LoginError(reason, `the authorization server refused the login: ${detail}`, { oauthError: code })
  }
  const code = query.get('code')
  if (code === null || code === '') throw new LoginError('invalid_response', 'the login callback carried neither a code nor an error')
  return query
}

interface Callback {
  query: URLSearchParams
  res: ServerResponse
}

interface Listener {
  port: number
  /** The first request that is a login callback; stray requests are answered 404 meanwhile. */
  next: (timeoutMs: number, signal: AbortSignal) => Promise<Callback>
  close: () => Promise<void>
}

async function openListener (port: number): Promise<Listener> {
  let deliver: ((callback: Callback) => void) | undefined
  let cancel: (() => void) | undefined
  // node:http is loaded by a login only: not by `token`, which shares this module.
  const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http')
  const server: Server = createServer((req, res) => {
    const query = callbackQuery(req, (server.address() as AddressInfo).port)
    if (query === undefined || deliver === undefined) {
      // A favicon, a prefetch, a second callback, another page's request: not ours, the flow goes on.
      sendPage(res, 404, NOT_FOUND_PAGE).catch(() => {})
      return
    }
    deliver({ query, res })
  })
  // A slow or idle browser must not hold the listener open past the login.
  server.requestTimeout = 30_000
  server.headersTimeout = 10_000
  try {
    server.listen(port, LOOPBACK)
    await once(server, 'listening')
  } catch (err) {
    const busy = (err as { code?: string }).code === 'EADDRINUSE'
    throw new LoginError('listen', busy ? `port ${port} on ${LOOPBACK} is in use: choose another redirectPort or 0` : `cannot listen on ${LOOPBACK}:${port}`, { cause: err })
  }
  // After listening, a socket error of one browser connection must not end the process.
  server.on('error', () => {})
  let closed: Promise<void> | undefined
  return {
    port: (server.address() as AddressInfo).port,
    next: (timeoutMs, signal) => new Promise<Callback>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        deliver = undefined
        cancel = undefined
      }
      const onAbort = (): void => { settle(); reject(new LoginError('aborted', 'login cancelled')) }
      const timer = setTimeout(() => {
        settle()
        reject(new LoginError('timeout', `no login callback within ${Math.round(timeoutMs / 1000)} s: run login again`))
      }, timeoutMs)
      signal.addEventListener('abort', onAbort, { once: true })
      deliver = (callback) => { settle(); resolve(callback) }
      // Closing before a callback came (present() failed): the wait ends quietly, its timer with it.
      cancel = () => { settle(); resolve(new Promise<Callback>(() => {})) }
    }),
    close: () => {
      cancel?.()
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        // Pages are sent with `connection: close`; a browser's idle keep-alive or preconnect sockets go now.
        server.closeIdleConnections()
        setTimeout(() => server.closeAllConnections(), 1000).unref()
      })
      return closed
    }
  }
}

/**
 * The query of a login callback, or undefined for any other request. The Host
 * must be the redirect URI's own: a page that reached the port through DNS
 * rebinding, under another name, cannot end the login.
 */
function callbackQuery (req: IncomingMessage, port: number): URLSearchParams | undefined {
  if (req.method !== 'GET' || req.headers.host !== `${LOOPBACK}:${port}`) return undefined
  const target = req.url ?? ''
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  if (path !== CALLBACK_PATH) return undefined
  const query = new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1))
  // A bare /callback (a browser's prefetch or a reload after the fact) is not an answer.
  if (!query.has('state') && !query.has('code') && !query.has('error')) return undefined
  return query
}

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;margin:3em auto;max-width:32em;padding:0 1em;color:#222}h1{font-size:1.4em}'
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64')

function page (title: string, text: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bearer-proxy: ${title}</title><style>${STYLE}</style></head><body><h1>${title}</h1><p>${text}</p></body></html>`
}

// Fixed texts: nothing of the callback (its code, its error words) is ever put in the page.
const DONE_PAGE = page('Login received', 'You can close this tab and return to the terminal.')
const FAILED_PAGE = page('Login failed', 'Return to the terminal to see why.')
const NOT_FOUND_PAGE = page('Not found', 'This address only receives the login callback.')

/**
 * A self-contained page under a CSP that allows its one inline style and
 * nothing else; no-store and no-referrer, so the callback URL (with its code)
 * is neither cached nor sent anywhere.
 */
function sendPage (res: ServerResponse, status: number, html: string): Promise<void> {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    connection: 'close'
  })
  // Resolved once the page is handed to the socket (so closing the listener does not cut it), or the browser left.
  return new Promise<void>((resolve) => {
    res.once('close', () => resolve())
    res.end(html, () => resolve())
  })
}
