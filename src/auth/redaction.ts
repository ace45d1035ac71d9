import { createHmac, randomBytes } from 'node:crypto'

/**
 * Values shorter than this are not searched for. Taking one or two letters out
 * of every message would wreck it ("invalid_client" with each "i" gone) and
 * protect nothing: a value that short is guessed in a few hundred tries.
 */
export const MIN_SECRET_LENGTH = 4
/**
 * A base64 run shorter than this (about 4 bytes) could match ordinary text;
 * shorter secrets are still caught when their whole base64 is echoed.
 */
const MIN_BASE64_RUN = 6
/** Messages built from a token endpoint's answer are capped at this length. */
export const MAX_MESSAGE_LENGTH = 300
const MARK = '[redacted]'
/** More than the longest form a UTF-16 unit takes in any encoding searched for (`%E2%9C%93`, `&#00034;`). */
const MAX_EXPANSION = 12

/** JSON's short escapes (RFC 8259 §7), `\/` included: PHP writes it. */
const JSON_SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '/': '\\/', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
/** HTML's, for endpoints that escape their JSON for a page. */
const HTML_NAMED: Record<string, string> = { '&': '&amp;', '"': '&quot;', "'": '&#39;', '<': '&lt;', '>': '&gt;' }
const BASE64_CHAR = /[A-Za-z0-9+/_-]/

interface Matcher {
  /** One secret in raw, form, URL, JSON or HTML encoding, or a base64 run of it. */
  find: RegExp | string
  /**
   * Base64 runs only: the character on each side holds bits of the secret's
   * first and last byte mixed with its neighbours' (an 8-digit key's last
   * digit), so it goes too.
   */
  widen: boolean
}

/**
 * The secrets of one scheme in every encoding a token endpoint may echo them
 * (SPEC "TOKEN_REJECTED"): raw; form and URL encoding (`+` or `%20` for a
 * space, hex in either case, reserved characters encoded or not); JSON
 * escaping (`\"`, `\\`, `\/`, `\uXXXX` in either case, surrogate pairs); HTML
 * escaping; and base64 / base64url of the raw, form-encoded (a Basic header)
 * or JSON-escaped value, found at any offset inside a longer base64 text.
 * The variants are built once, when the scheme is made; `with` adds the
 * values of one request (the refresh token sent, a signed assertion) only
 * when a message has to be cleaned.
 */
export class Redactor {
  static readonly none = new Redactor(new Set(), [], 0)
  /** The values covered, so a request's own values that the scheme already has add nothing. */
  readonly #values: ReadonlySet<string>
  readonly #matchers: readonly Matcher[]
  /** How far past the message cap a match may reach; the text is cut there before searching. */
  readonly #reach: number

  private constructor (values: ReadonlySet<string>, matchers: readonly Matcher[], reach: number) {
    this.#values = values
    this.#matchers = matchers
    this.#reach = reach
  }

  static of (secrets: Iterable<string>): Redactor {
    return Redactor.none.with(secrets)
  }

  /** These secrets as well. */
  with (secrets: Iterable<string>): Redactor {
    const values = [...new Set(secrets)].filter((s) => s.length >= MIN_SECRET_LENGTH && !this.#values.has(s))
    if (values.length === 0) return this
    const matchers = [...this.#matchers]
    let reach = this.#reach
    for (const value of values) {
      for (const part of patternParts(value)) matchers.push({ find: new RegExp(textPattern(part), 'g'), widen: false })
      for (const run of base64Runs(value)) matchers.push({ find: run, widen: true })
      reach = Math.max(reach, value.length * MAX_EXPANSION + 2)
    }
    return new Redactor(new Set([...this.#values, ...values]), matchers, reach)
  }

  /**
   * `text` with every occurrence of every variant replaced, capped at `limit`.
   * All matches are found first and their union replaced, so two secrets that
   * overlap in the text, or a short one inside a long one's encoding, leave
   * nothing of either behind (replacing one after the other, longest first,
   * can cut the second apart).
   */
  redact (text: string, limit = MAX_MESSAGE_LENGTH): string {
    // A match that starts before the cap ends within `reach` of it; the rest is dropped anyway.
    const head = text.length > limit + this.#reach ? text.slice(0, limit + this.#reach) : text
    const spans: Array<[number, number]> = []
    for (const matcher of this.#matchers) collect(head, matcher, spans)
    const out = spans.length === 0 ? head : replaceSpans(head, spans)
    return out.length > limit ? `${out.slice(0, limit)}…` : out
  }
}

function collect (text: string, matcher: Matcher, spans: Array<[number, number]>): void {
  const { find } = matcher
  if (typeof find === 'string') {
    // indexOf moves forward by at least one each turn: bounded by the text's length.
    for (let at = text.indexOf(find); at !== -1; at = text.indexOf(find, at + 1)) {
      let start = at
      let end = at + find.length
      if (matcher.widen && start > 0 && BASE64_CHAR.test(text.charAt(start - 1))) start--
      if (matcher.widen && end < text.length && BASE64_CHAR.test(text.charAt(end))) end++
      spans.push([start, end])
    }
    return
  }
  find.lastIndex = 0
  for (let m = find.exec(text); m !== null; m = find.exec(text)) {
    spans.push([m.index, m.index + m[0].length])
    // Overlapping occurrences too; a pattern of 4+ characters never matches empty.
    find.lastIndex = m.index + 1
  }
}

function replaceSpans (text: string, spans: Array<[number, number]>): string {
  spans.sort((a, b) => a[0] - b[0])
  let out = ''
  let pos = 0
  let openEnd = -1
  for (const [start, end] of spans) {
    if (start > openEnd) {
      out += text.slice(pos, start) + MARK
    }
    openEnd = Math.max(openEnd, end)
    pos = Math.max(pos, end)
  }
  return out + text.slice(pos)
}

/**
 * Values longer than this are searched for in parts of this many characters.
 * A pattern spells every character in a dozen encodings, some fifty pattern
 * characters each: past about 7,000 characters of value (a CA bundle, a
 * certificate chain, a key file holding its chain) V8 fails to compile it with
 * "Invalid regular expression: /<the pattern>/: Stack overflow", a message
 * that spells the secret out and would travel as the token error itself.
 * Parts that follow one another in the value follow one another in its echo,
 * so together they still remove a whole echo.
 */
const MAX_PATTERN_CHARS = 512

/**
 * `value` cut into equal parts of at most MAX_PATTERN_CHARS code points (a
 * surrogate pair is never split): equal, so no short last part matches
 * ordinary text.
 */
function patternParts (value: string): string[] {
  const chars = [...value]
  if (chars.length <= MAX_PATTERN_CHARS) return [value]
  const size = Math.ceil(chars.length / Math.ceil(chars.length / MAX_PATTERN_CHARS))
  const parts: string[] = []
  for (let at = 0; at < chars.length; at += size) parts.push(chars.slice(at, at + size).join(''))
  return parts
}

/** A regular expression that matches `value` with each character raw or in any of its encodings. */
function textPattern (value: string): string {
  let pattern = ''
  // By code point, so a character outside the BMP is one UTF-8 sequence or one surrogate pair.
  for (const ch of value) pattern += charPattern(ch)
  return pattern
}

function charPattern (ch: string): string {
  // Letters and digits stand as they are, or percent-encoded or as HTML numeric entities by
  // encoders that escape every byte.
  if (/^[A-Za-z0-9]$/.test(ch)) {
    const code = ch.charCodeAt(0)
    return `(?:${ch}|%${hexPattern(code, 2)}|&#0{0,3}${code};|&#[xX]0{0,3}${hexPattern(code, 1)};)`
  }
  const forms = new Set<string>([escapeRegExp(ch)])
  forms.add([...Buffer.from(ch, 'utf8')].map((byte) => `%${hexPattern(byte, 2)}`).join(''))
  if (ch === ' ') forms.add('\\+')
  let unicode = ''
  for (let i = 0; i < ch.length; i++) unicode += `\\\\u${hexPattern(ch.charCodeAt(i), 4)}`
  forms.add(unicode)
  const short = JSON_SHORT[ch]
  if (short !== undefined) forms.add(escapeRegExp(short))
  const named = HTML_NAMED[ch]
  if (named !== undefined) forms.add(escapeRegExp(named))
  const codePoint = ch.codePointAt(0) as number
  forms.add(`&#0{0,3}${codePoint};`).add(`&#[xX]0{0,3}${hexPattern(codePoint, 1)};`)
  return `(?:${[...forms].join('|')})`
}

/** Hex digits of `n`, each letter in either case. */
function hexPattern (n: number, width: number): string {
  return n.toString(16).padStart(width, '0').replace(/[a-f]/g, (d) => `[${d}${d.toUpperCase()}]`)
}

function escapeRegExp (text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')
}

/**
 * The base64 and base64url text that any base64 of a longer string holding
 * `value` must contain, whatever its offset (three alignments), for the raw
 * value, its form encoding (inside a Basic header) and its JSON escaping
 * (inside a JWT or a JSON body); plus the whole encodings, so a short secret
 * base64-encoded on its own is caught too.
 */
function base64Runs (value: string): string[] {
  const runs = new Set<string>()
  const sources = new Set([value, new URLSearchParams({ v: value }).toString().slice(2), JSON.stringify(value).slice(1, -1)])
  for (const source of sources) {
    const bytes = Buffer.from(source, 'utf8')
    // Plain hex too (lower and upper case): some endpoints dump what they received as bytes.
    runs.add(bytes.toString('hex')).add(bytes.toString('hex').toUpperCase())
    runs.add(bytes.toString('base64')).add(bytes.toString('base64url'))
    for (let offset = 0; offset < 3; offset++) {
      const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64')
      // Only the characters made of this value's bits alone: from the first whole sextet to the last.
      const run = encoded.slice(Math.ceil(offset * 8 / 6), Math.floor((offset + bytes.length) * 8 / 6))
      if (run.length < MIN_BASE64_RUN) continue
      runs.add(run).add(run.replace(/\+/g, '-').replace(/\//g, '_'))
    }
  }
  return [...runs]
}

/** Private members of a JWK (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const JWK_PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']
/** Auth options that are secrets whatever their source. */
const SECRET_OPTIONS = ['clientSecret', 'password', 'refreshToken', 'token', 'secret', 'subjectToken', 'actorToken', 'clientAssertion']
/**
 * PEM blocks other than certificates (`tls.key`, or a file holding key and
 * chain). Certificates are public (a server sends its chain to anyone who
 * connects, a client its own in the handshake) and the proxy sends none in a
 * request a token endpoint could echo. As secrets, the base64 lines of a CA
 * bundle would be thousands of patterns, whose first search blocks the event
 * loop for seconds per certificate: minutes for a system bundle, at the first
 * token error, for every route.
 */
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g
const CERTIFICATE_LABELS = new Set(['CERTIFICATE', 'TRUSTED CERTIFICATE', 'X509 CRL'])

/**
 * The PEM text's secret part: its non-certificate blocks; all of it when
 * anything but PEM blocks is in it (nothing of an unknown text is public).
 */
function pemSecrets (pem: string): string[] {
  const blocks = [...pem.matchAll(PEM_BLOCK)]
  if (blocks.length === 0 || pem.replace(PEM_BLOCK, '').trim() !== '') return [pem, ...pem.split(/\r?\n/).filter((line) => !line.startsWith('-----'))]
  const secrets: string[] = []
  for (const [block, label, body] of blocks) {
    if (CERTIFICATE_LABELS.has(label ?? '')) continue
    // Its base64 lines too, each of which may be echoed alone; not the BEGIN/END lines every PEM shares.
    secrets.push(block, ...(body ?? '').split(/\r?\n/).filter((line) => line !== ''))
  }
  return secrets
}

/**
 * The secrets of a route's auth block (SPEC "TOKEN_REJECTED"): the known
 * secret options, a private key (PEM, its lines, or a JWK's private members),
 * and every value that came from a secret reference (`referenced`), whatever
 * option it was given in (`params`, a `login` body field, a `claims` value, a
 * header). A scheme adds what only it knows to be secret.
 */
export function authSecrets (options: object, referenced: Iterable<string>): string[] {
  const record = options as Record<string, unknown>
  const secrets: string[] = []
  for (const option of SECRET_OPTIONS) {
    const value = record[option]
    if (typeof value === 'string') secrets.push(value)
  }
  const key = record.privateKey
  if (typeof key === 'string') secrets.push(key, ...key.split(/\r?\n/))
  if (key !== null && typeof key === 'object') {
    for (const member of JWK_PRIVATE) {
      const value = (key as Record<string, unknown>)[member]
      if (typeof value === 'string') secrets.push(value)
    }
  }
  const tls = record.tls
  if (tls !== null && typeof tls === 'object') {
    for (const pem of Object.values(tls as Record<string, unknown>)) if (typeof pem === 'string') secrets.push(...pemSecrets(pem))
  }
  // A referenced PEM text (`cert: ${file:...}`) counts by its secret part alone, like tls's own.
  for (const value of referenced) if (!isPlainAddress(value)) secrets.push(...(value.includes('-----BEGIN ') ? pemSecrets(value) : [value]))
  return secrets
}

/**
 * A reference that holds a bare http(s) address (`tokenUrl: ${env:API_URL}/token`)
 * names a place, not a credential: the proxy shows addresses in its own
 * messages and in /routes, and hiding them would leave "token endpoint
 * [redacted] answered HTTP 503". One with user-info, a query or a fragment
 * may carry a key, so it stays a secret.
 */
function isPlainAddress (value: string): boolean {
  return /^https?:\/\/[^\s@?#]+$/i.test(value) && URL.canParse(value)
}

/** Keyed per process: a fingerprint tells tokens apart within one run and says nothing about them. */
const FINGERPRINT_KEY = randomBytes(32)

/**
 * 8 hex digits of an HMAC-SHA256 of `value` under a key drawn at start and
 * never shown: unlike a plain hash, it cannot be brute-forced back to a short
 * static key, and it changes from one process run to the next.
 */
export function fingerprint (value: string): string {
  return createHmac('sha256', FINGERPRINT_KEY).update(value).digest('hex').slice(0, 8)
}
