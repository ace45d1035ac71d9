/**
 * The person at the keyboard, played over HTTP: a tiny browser (cookie jar,
 * redirects followed by hand) that logs in and consents on oidc-provider's
 * development pages, and the route's OAuth client as the login modules get it.
 */
import { Redactor } from '../src/auth/redaction.js'
import type { TokenResponse } from '../src/auth/token.js'
import type { ClientAuth } from '../src/auth/client-auth.js'
import { requestToken } from '../src/auth/token-endpoint.js'

const MAX_STEPS = 20

export interface PageAnswer {
  url: string
  status: number
  headers: Headers
  text: string
}

/** Cookies by name for one origin (the provider's); attributes ignored but deletion. */
export class Browser {
  readonly #cookies = new Map<string, string>()

  async request (url: string, init: { method?: string, form?: Record<string, string> } = {}): Promise<PageAnswer> {
    const headers: Record<string, string> = {}
    if (this.#cookies.size > 0) headers.cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    let body: string | undefined
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    }
    const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) })
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
    return { url, status: res.status, headers: res.headers, text: await res.text() }
  }

  /**
   * Follows redirects from `start`, submitting what oidc-provider's pages ask
   * for on the way (login, consent, device code confirmation), until a page
   * that is none of those. `beforeLeaving` sees (and may replace) the first
   * URL outside the provider: the redirect to the login's callback.
   */
  async walk (start: string, options: WalkOptions = {}): Promise<PageAnswer> {
    let answer = await this.request(start)
    for (let step = 0; step < MAX_STEPS; step++) {
      const location = answer.headers.get('location')
      if (answer.status >= 300 && answer.status < 400 && location !== null) {
        let next = new URL(location, answer.url).href
        if (new URL(next).origin !== new URL(start).origin && options.beforeLeaving !== undefined) next = options.beforeLeaving(next)
        answer = await this.request(next)
        continue
      }
      const form = pageForm(answer)
      if (form === undefined) return answer
      if (form.fields.confirm !== undefined && options.abort === true) {
        // The device code confirmation page's "cancel".
        delete form.fields.confirm
        return await this.request(form.action, { form: { ...form.fields, abort: 'yes' } })
      }
      if (form.fields.prompt === 'login') {
        if (options.abort === true) {
          answer = await this.request(`${form.action}/abort`)
          continue
        }
        form.fields.login = options.login ?? 'person@example.com'
        form.fields.password = 'any password'
      }
      answer = await this.request(form.action, { form: form.fields })
    }
    throw new Error(`no end after ${MAX_STEPS} pages`)
  }
}

export interface WalkOptions {
  login?: string
  /** Cancel at the login page, or at the device code confirmation: the server answers `access_denied`. */
  abort?: boolean
  beforeLeaving?: (url: string) => string
}

/** The first form of a page with its hidden and pre-filled fields; undefined on pages without one. */
export function pageForm (page: PageAnswer): { action: string, fields: Record<string, string> } | undefined {
  if (!(page.headers.get('content-type') ?? '').includes('html')) return undefined
  const form = /<form\b[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(page.text)
  if (form === null) return undefined
  const fields: Record<string, string> = {}
  for (const input of (form[2] ?? '').matchAll(/<input\b[^>]*>/gi)) {
    const name = /\bname="([^"]*)"/.exec(input[0])?.[1]
    const value = /\bvalue="([^"]*)"/.exec(input[0])?.[1]
    if (name !== undefined && value !== undefined) fields[name] = unescapeHtml(value)
  }
  return { action: new URL(unescapeHtml(form[1] ?? ''), page.url).href, fields }
}

function unescapeHtml (text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|#39);/gi, (_m, entity: string) => {
    if (entity[0] === '#') return String.fromCodePoint(entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : Number(entity.slice(1)))
    return ({ amp: '&', lt: '<', gt: '>', quot: '"' } as Record<string, string>)[entity.toLowerCase()] ?? ''
  })
}

/** A token endpoint client as the login modules get one from the route: grant(params) with the client's authentication. */
export function tokenClient (tokenUrl: string, authenticate: ClientAuth, secrets: string[] = []): (params: Record<string, string>, signal: AbortSignal) => Promise<TokenResponse> {
  const redactor = Redactor.of(secrets)
  return async (params, signal) => {
    const body = { ...params }
    const headers: Record<string, string> = {}
    await authenticate({ body, headers }, tokenUrl)
    return requestToken({ url: tokenUrl, encoding: 'form', body, headers, timeout: 10_000, secrets: redactor, signal })
  }
}

/**
 * Time for the device flow: `sleep` moves the clock instead of waiting (and
 * lets the event loop turn), and records each wait; `onSleep` runs after each.
 */
export class FakeClock {
  now = 1_700_000_000_000
  readonly sleeps: number[] = []
  onSleep: ((count: number) => void | Promise<void>) | undefined

  readonly read = (): number => this.now

  readonly sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms)
    this.now += ms
    await new Promise<void>((resolve) => setImmediate(resolve))
    await this.onSleep?.(this.sleeps.length)
  }
}

/** `message` carries none of `values` (nor the base64 of any), each at least 8 characters. */
export function carriesNone (message: string, values: Array<string | undefined>): boolean {
  return values.every((v) => v === undefined || v.length < 8 || (!message.includes(v) && !message.includes(Buffer.from(v).toString('base64'))))
}
