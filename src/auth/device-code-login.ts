import { setTimeout as delay } from 'node:timers/promises'
import { LoginError, printableText } from './login-error.js'
import { Redactor } from './redaction.js'
import type { TokenResponse } from './token.js'
import type { ClientAuth, TokenRequestParts } from './client-auth.js'
import { cleanErrors, postToEndpoint, throwIfRefused, origin, type EndpointDispatcher, type TokenRequest } from './token-endpoint.js'
import { TokenError } from './token-error.js'
import { parseSeconds } from './token.js'

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'
/** RFC 8628 §3.2: the interval when the server names none. */
export const DEFAULT_POLL_INTERVAL_S = 5
/** RFC 8628 §3.5: what each `slow_down` adds to the interval. */
export const SLOW_DOWN_STEP_S = 5
/** The longest a login waits for the person, whatever `expires_in` says. */
export const MAX_DEVICE_WAIT_S = 3600
/** When the answer has no `expires_in` (it is required), stop polling after this. */
const DEFAULT_EXPIRES_IN_S = 300
/** A server that asks for no wait at all is not polled faster than this. */
const MIN_POLL_INTERVAL_S = 1
/** The backoff after failed polls (no answer, 5xx) grows up to this, unless the server asks for longer. */
const MAX_BACKOFF_MS = 60_000
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** What the person needs to approve the login on another device (RFC 8628 §3.3). */
export interface DevicePrompt {
  verificationUri: string
  /** The URI with the user code in it, for a link or a QR code. */
  verificationUriComplete?: string
  userCode: string
  /** Seconds the code stays valid. */
  expiresIn: number
}

export interface DeviceCodeLoginOptions {
  deviceAuthorizationUrl: string
  /** Space-separated. */
  scope?: string
  /** Extra device authorization request fields (`audience`). */
  params?: Record<string, string>
  /**
   * The route's client authentication, the same as at its token endpoint (RFC
   * 8628 §3.1); a public client sends `client_id` alone.
   */
  clientAuth: ClientAuth
  /** The token endpoint: the audience of a client assertion (RFC 7523 §3); default the device authorization endpoint. */
  tokenUrl?: string
  /** One poll of the token endpoint through the route's OAuth client (which authenticates the client). */
  grant: (params: Record<string, string>, signal: AbortSignal) => Promise<TokenResponse>
  /** Shows the person where to go and the code to enter. */
  present: (prompt: DevicePrompt) => void | Promise<void>
  /** ms for the device authorization request; default 10 s. */
  timeoutMs?: number
  /** The route's secrets, removed from any message built from an answer. */
  secrets?: Redactor
  now?: () => number
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  signal?: AbortSignal
  dispatcher?: EndpointDispatcher
}

interface DeviceAuthorization extends DevicePrompt {
  deviceCode: string
  /** Seconds between polls. */
  interval: number
}

/**
 * The device authorization grant (RFC 8628): asks for a device code, shows
 * the person the verification URI and user code, then polls the token
 * endpoint until they approve, refuse, or the code expires. Polls honour the
 * interval and each `slow_down` (§3.5); the wait is bounded by `expires_in`
 * (and `MAX_DEVICE_WAIT_S`), in time and in the number of polls.
 */
export async function deviceCodeLogin (options: DeviceCodeLoginOptions): Promise<TokenResponse> {
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }))
  const signal = options.signal ?? new AbortController().signal
  const authorization = await requestDeviceAuthorization(options, signal)
  const { deviceCode, interval, expiresIn, ...prompt } = authorization
  await options.present({ ...prompt, expiresIn })
  const deadline = now() + expiresIn * 1000
  let intervalMs = interval * 1000
  // The count bound backs the time bound: an injected clock that stands still cannot make this spin.
  const maxPolls = Math.ceil(expiresIn / MIN_POLL_INTERVAL_S)
  for (let poll = 0; poll < maxPolls && now() + intervalMs < deadline; poll++) {
    try {
      await sleep(intervalMs, signal)
    } catch (err) {
      if (signal.aborted) throw new LoginError('aborted', 'login cancelled', { cause: err })
      throw err
    }
    try {
      return await options.grant({ grant_type: DEVICE_CODE_GRANT, device_code: deviceCode }, signal)
    } catch (err) {
      if (signal.aborted) throw new LoginError('aborted', 'login cancelled', { cause: err })
      if (!(err instanceof TokenError)) throw err
      const code = err.kind === 'rejected' ? err.oauthError : undefined
      if (code === 'authorization_pending') continue
      if (code === 'slow_down') {
        intervalMs += SLOW_DOWN_STEP_S * 1000
        continue
      }
      if (code === 'expired_token') throw new LoginError('expired', 'the device code expired before the login was approved: run login again', { oauthError: code })
      if (code === 'access_denied') throw new LoginError('denied', 'the login was refused on the verification page', { oauthError: code })
      if (err.kind === 'unavailable') {
        // RFC 8628 §3.5: no answer, or a server in trouble: back off exponentially.
        intervalMs = Math.max(intervalMs, Math.min(intervalMs * 2, MAX_BACKOFF_MS), err.retryAfterMs ?? 0)
        continue
      }
      throw err
    }
  }
  throw new LoginError('expired', `the login was not approved within ${expiresIn} s (the device code expired): run login again`)
}

/** RFC 8628 §3.1 / §3.2: the device authorization request and its answer. */
async function requestDeviceAuthorization (options: DeviceCodeLoginOptions, signal: AbortSignal): Promise<DeviceAuthorization> {
  const url = options.deviceAuthorizationUrl
  const body: Record<string, string> = { ...options.params }
  if (options.scope !== undefined && options.scope !== '') body.scope = options.scope
  const parts: TokenRequestParts = { body, headers: {} }
  await options.clientAuth(parts, options.tokenUrl ?? url)
  const req: TokenRequest = {
    url,
    encoding: 'form',
    body: parts.body,
    headers: parts.headers,
    timeout: options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    secrets: options.secrets ?? Redactor.none,
    signal,
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher })
  }
  const where = `device authorization endpoint ${origin(url)}`
  const answer = await postToEndpoint(req, 'device authorization endpoint')
  return cleanErrors(req, () => {
    throwIfRefused(answer, where, 'device_code')
    const json = answer.json
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new TokenError('unavailable', `${where} answered HTTP ${answer.status} with a body that is not a JSON object`, { status: answer.status })
    }
    return deviceAuthorizationFrom(json as Record<string, unknown>, where)
  })
}

function deviceAuthorizationFrom (json: Record<string, unknown>, where: string): DeviceAuthorization {
  const missing = (field: string): LoginError => new LoginError('invalid_response', `${where} answered without a usable "${field}"`)
  const deviceCode = json.device_code
  if (typeof deviceCode !== 'string' || deviceCode === '') throw missing('device_code')
  const userCode = typeof json.user_code === 'string' ? printableText(json.user_code, 64) : ''
  if (userCode === '') throw missing('user_code')
  // `verification_url`: the name some servers (Google) used before RFC 8628.
  const verificationUri = webUrl(json.verification_uri) ?? webUrl(json.verification_url)
  if (verificationUri === undefined) throw missing('verification_uri')
  const expiresIn = Math.min(parseSeconds(json.expires_in) ?? DEFAULT_EXPIRES_IN_S, MAX_DEVICE_WAIT_S)
  const interval = Math.max(parseSeconds(json.interval) ?? DEFAULT_POLL_INTERVAL_S, MIN_POLL_INTERVAL_S)
  const authorization: DeviceAuthorization = { deviceCode, userCode, verificationUri, expiresIn, interval }
  const complete = webUrl(json.verification_uri_complete)
  if (complete !== undefined) authorization.verificationUriComplete = complete
  return authorization
}

/**
 * An http(s) URL as the WHATWG parser writes it (control characters removed
 * or percent-encoded), safe to print and to open; anything else (a
 * `javascript:` or `file:` URI) is not shown to the person at all.
 */
function webUrl (value: unknown): string | undefined {
  if (typeof value !== 'string' || !URL.canParse(value)) return undefined
  const url = new URL(value)
  return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined
}
