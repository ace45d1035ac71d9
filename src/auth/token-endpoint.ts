import type { Dispatcher } from 'undici'
import type { TokenResponse } from './token.js'
import { parseSeconds } from './token.js'
import type { Redactor } from './redaction.js'
import { TokenError } from './token-error.js'
import { loadUndici } from './undici.js'

/** Token answers larger than this are not tokens. */
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024

/** Where each field is found in the answer: a field name or a dotted path (`data.token`). */
export interface ResponseFields {
  accessToken: string
  expiresIn: string
  refreshToken: string
  refreshExpiresIn: string
}

export const OAUTH_FIELDS: ResponseFields = {
  accessToken: 'access_token',
  expiresIn: 'expires_in',
  refreshToken: 'refresh_token',
  refreshExpiresIn: 'refresh_expires_in'
}

export interface TokenRequest {
  url: string
  encoding: 'form' | 'json'
  body: Record<string, unknown>
  headers?: Record<string, string>
  /** ms; covers connecting, waiting for headers and reading the body. */
  timeout: number
  /** The scheme's secrets, stripped from any message built from the endpoint's answer. */
  secrets: Redactor
  /**
   * Secrets of this request alone that the body's credential fields do not
   * show (a refresh token placed in a custom field); stripped like `secrets`.
   */
  requestSecrets?: readonly string[]
  fields?: ResponseFields
  signal?: AbortSignal
  dispatcher?: EndpointDispatcher
  /** Told the headers of every answer, before its body is read (a `DPoP-Nonce` may come with any, RFC 9449 §8). */
  onHeaders?: (headers: Record<string, string | string[] | undefined>) => void
}

/**
 * A connection pool, or one made on first use (a route's own TLS settings):
 * `token` answering from a stored token never loads the HTTP client.
 */
export type EndpointDispatcher = Dispatcher | (() => Promise<Dispatcher>)

let defaultDispatcher: Dispatcher | undefined

async function dispatcherFor (dispatcher: EndpointDispatcher | undefined): Promise<Dispatcher> {
  if (typeof dispatcher === 'function') return await dispatcher()
  if (dispatcher !== undefined) return dispatcher
  const { Agent } = await loadUndici()
  // Certificates are verified (undici's default, stated here so no one turns it off by accident).
  defaultDispatcher ??= new Agent({ connect: { rejectUnauthorized: true }, keepAliveTimeout: 10_000 })
  return defaultDispatcher
}

/** POSTs to a token endpoint and parses the answer (RFC 6749 §5.1 / §5.2 and look-alikes). */
export async function requestToken (req: TokenRequest): Promise<TokenResponse> {
  const fields = req.fields ?? OAUTH_FIELDS
  const answer = await postToEndpoint(req)
  return cleanErrors(req, () => parseTokenAnswer(answer, req, fields))
}

/** An endpoint's answer as it came: any status, the body read within the size bound. */
export interface EndpointAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  /** `text` parsed, or undefined when it is not JSON. */
  json: unknown
}

/**
 * POSTs `req.body` to `req.url` and reads the answer whatever its status
 * (token, device authorization and revocation endpoints share this). `what`
 * names the endpoint in messages. No answer, a timeout or an oversized body
 * is a TokenError `unavailable` whose message carries no secret.
 */
export async function postToEndpoint (req: TokenRequest, what = 'token endpoint'): Promise<EndpointAnswer> {
  const body = req.encoding === 'json' ? JSON.stringify(req.body) : formEncode(req.body)
  const signal = req.signal === undefined ? AbortSignal.timeout(req.timeout) : AbortSignal.any([req.signal, AbortSignal.timeout(req.timeout)])
  try {
    const [{ request }, dispatcher] = await Promise.all([loadUndici(), dispatcherFor(req.dispatcher)])
    const res = await request(req.url, {
      method: 'POST',
      dispatcher,
      headers: {
        'content-type': req.encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...req.headers
      },
      body,
      signal,
      headersTimeout: req.timeout,
      bodyTimeout: req.timeout
    })
    req.onHeaders?.(res.headers)
    const text = await readLimited(res.body, MAX_TOKEN_RESPONSE_BYTES)
    return { status: res.statusCode, headers: res.headers, text, json: parseJson(text) }
  } catch (err) {
    const reason = signal.aborted ? `no answer within ${req.timeout} ms` : describeNetworkError(err)
    throw new TokenError('unavailable', requestRedactor(req).redact(`${what} ${origin(req.url)}: ${reason}`), { cause: err })
  }
}

/**
 * Runs `parse` over an answer to `req`; a TokenError it throws comes out with
 * every secret of the request removed and made printable. Every message goes
 * through here: a URL path or an echo may carry any secret, in any encoding.
 */
export function cleanErrors<T> (req: TokenRequest, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if (!(err instanceof TokenError)) throw err
    const redactor = requestRedactor(req)
    throw new TokenError(err.kind, printable(redactor.redact(err.message)), {
      status: err.status,
      ...(err.oauthError === undefined ? {} : { oauthError: printable(redactor.redact(err.oauthError)) }),
      ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs })
    })
  }
}

/** Control characters, and the bidi controls that reorder what a person reads. */
const UNPRINTABLE = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]+/gu

/**
 * A token endpoint's words made safe to print: they reach `check` lines on a
 * terminal, where a line break would forge another route's line and an escape
 * sequence could rewrite the screen or the clipboard. Runs after redaction, so
 * a secret is matched as it was sent.
 */
function printable (text: string): string {
  return text.replace(UNPRINTABLE, ' ').replace(/ {2,}/g, ' ')
}

/**
 * The scheme's secrets plus what this request carried: the credential fields
 * of its body (the refresh token sent, a signed assertion and its parts) and
 * its header values (the Basic header as sent, and its base64 alone). Built
 * only when a message needs cleaning.
 */
function requestRedactor (req: TokenRequest): Redactor {
  const values = [...credentialValues(req.body), ...(req.requestSecrets ?? [])]
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    values.push(value)
    if (name.toLowerCase() === 'authorization') values.push(value.replace(/^\S+ +/, ''))
  }
  return req.secrets.with(values)
}

function parseTokenAnswer (answer: EndpointAnswer, req: TokenRequest, fields: ResponseFields): TokenResponse {
  const where = `token endpoint ${origin(req.url)}`
  throwIfRefused(answer, where, fields.accessToken)
  const { status, json } = answer
  if (!isRecord(json)) throw new TokenError('unavailable', `${where} answered HTTP ${status} with a body that is not JSON`, { status })
  const accessToken = pick(json, fields.accessToken)
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new TokenError('unavailable', `${where} answered without "${fields.accessToken}"`, { status })
  }
  const token: TokenResponse = { accessToken }
  const tokenType = json.token_type
  if (typeof tokenType === 'string' && tokenType !== '') token.tokenType = tokenType
  const expiresIn = parseSeconds(pick(json, fields.expiresIn))
  if (expiresIn !== undefined) token.expiresIn = expiresIn
  const refreshToken = pick(json, fields.refreshToken)
  if (typeof refreshToken === 'string' && refreshToken !== '') token.refreshToken = refreshToken
  const refreshExpiresIn = parseSeconds(pick(json, fields.refreshExpiresIn))
  if (refreshExpiresIn !== undefined) token.refreshExpiresIn = refreshExpiresIn
  return token
}

/**
 * Throws when the answer is a refusal or a failure: 429 and 5xx are
 * `unavailable` (with Retry-After); other 4xx, and a 2xx carrying `error`
 * without `successField`, are `rejected` with the endpoint's own words (RFC
 * 6749 §5.2) and its `error` code; any other non-2xx is `unavailable`.
 * Messages still hold what the endpoint echoed: callers run this inside
 * `cleanErrors`.
 */
export function throwIfRefused (answer: EndpointAnswer, where: string, successField: string): void {
  const { status, headers, json } = answer
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers['retry-after'])
    throw new TokenError('unavailable', `${where} answered HTTP ${status}`, { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
  }
  if (status >= 400 || (status < 300 && isRecord(json) && json[successField] === undefined && typeof json.error === 'string')) {
    const { oauthError, description } = describeErrorBody(json)
    const detail = [oauthError, description].filter(Boolean).join(': ')
    // The endpoint's own words go to the client (SPEC "TOKEN_REJECTED"); cleanErrors removes the secrets.
    const message = `${detail === '' ? 'refused' : detail} (HTTP ${status})`
    throw new TokenError('rejected', message, { status, ...(oauthError === undefined ? {} : { oauthError }) })
  }
  if (status < 200 || status >= 300) {
    throw new TokenError('unavailable', `${where} answered HTTP ${status}`, { status })
  }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Reads a dotted path (`data.token`) from a parsed answer. */
export function pick (json: Record<string, unknown>, path: string): unknown {
  if (path in json) return json[path]
  let value: unknown = json
  for (const key of path.split('.')) {
    if (!isRecord(value)) return undefined
    value = value[key]
  }
  return value
}

/** OAuth (`error`, `error_description`), Netography (`name`, `message`) and `{error: {code, message}}` shapes. */
function describeErrorBody (json: unknown): { oauthError?: string, description?: string } {
  if (!isRecord(json)) return {}
  const err = json.error
  if (typeof err === 'string') {
    const description = typeof json.error_description === 'string' ? json.error_description : typeof json.message === 'string' ? json.message : undefined
    return description === undefined ? { oauthError: err } : { oauthError: err, description }
  }
  if (isRecord(err)) {
    const code = typeof err.code === 'string' ? err.code : undefined
    const message = typeof err.message === 'string' ? err.message : undefined
    return { ...(code === undefined ? {} : { oauthError: code }), ...(message === undefined ? {} : { description: message }) }
  }
  const name = typeof json.name === 'string' ? json.name : undefined
  const message = typeof json.message === 'string' ? json.message : undefined
  return { ...(name === undefined ? {} : { oauthError: name }), ...(message === undefined ? {} : { description: message }) }
}

/** Body fields that carry credentials in RFC 6749 / 7523 / 8628 / 8693 / 7009 requests and their look-alikes. */
const CREDENTIAL_FIELDS = new Set(['password', 'client_secret', 'refresh_token', 'assertion', 'client_assertion', 'jwt', 'code', 'code_verifier', 'device_code', 'token', 'subject_token', 'actor_token'])

const JWS_COMPACT = /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/

function credentialValues (body: Record<string, unknown>): string[] {
  const values: string[] = []
  for (const [key, value] of Object.entries(body)) {
    if (!CREDENTIAL_FIELDS.has(key) || typeof value !== 'string') continue
    values.push(value)
    // A JWT's claims and signature may be echoed apart from the whole (its header is the same for every JWT).
    if (JWS_COMPACT.test(value)) values.push(...value.split('.').slice(1))
  }
  return values
}

/** `Retry-After` in seconds or as an HTTP-date, to ms from now. */
export function parseRetryAfter (value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined || text.trim() === '') return undefined
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - now)
}

function formEncode (body: Record<string, unknown>): string {
  const form = new URLSearchParams()
  for (const [k, v] of Object.entries(body)) {
    if (v !== undefined) form.append(k, typeof v === 'string' ? v : JSON.stringify(v))
  }
  return form.toString()
}

/** The body as UTF-8 text; past `limit` bytes the stream is destroyed and the read fails. */
export async function readLimited (body: AsyncIterable<Buffer> & { destroy: (err?: Error) => unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > limit) {
      body.destroy()
      throw new Error(`answer larger than ${limit} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** OpenSSL's verdicts on a server certificate no trusted CA vouches for. */
const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED'
])

function describeNetworkError (err: unknown): string {
  const e = err as { code?: string, message?: string }
  if (typeof e.message === 'string' && e.message.startsWith('answer larger')) return e.message
  // Said plainly: the usual cause is a private CA the config has not added (auth.tls.ca).
  if (e.code !== undefined && UNTRUSTED_CERTIFICATE.has(e.code)) return `its TLS certificate is not trusted (${e.code}); nothing was sent`
  if (e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `its TLS certificate is not for this host (${e.code}); nothing was sent`
  return e.code ?? e.message ?? 'request failed'
}

/** A URL as messages may show it: no user-info, no query (either may carry a key). */
export function origin (url: string): string {
  const u = new URL(url)
  return `${u.origin}${u.pathname}`
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
