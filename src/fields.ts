import { createPrivateKey, X509Certificate } from 'node:crypto'
import en from 'zod/v4/locales/en.js'
import * as z from 'zod/mini'

// zod/mini loads no locale: without this, zod's own issues ("expected string",
// "Too small: ...") would all read "Invalid input". The same English as zod's classic API.
z.config(en())

/**
 * Field types shared by the config schema and the schemes' option schemas:
 * every URL, duration and key of the config is checked by one of these, so
 * a mistake reads the same wherever it is made.
 */

/** The URL when `value` is an absolute http(s) URL, else undefined: never throws, and no scheme is guessed. */
export function parseHttpUrl (value: string): URL | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' ? url : undefined
}

/**
 * Every URL of the config goes through here, so code past the schema may call
 * `new URL()` on it. `abort` stops later checks on the same value: zod runs
 * them even after one failed, and checks that parse the URL must not see a
 * value that is none.
 */
export const httpUrl = z.string().check(z.refine((v) => parseHttpUrl(v) !== undefined, { message: 'must be an absolute http(s) URL', abort: true }))

/** Why a valid http(s) URL cannot be a base the proxy sends to, or undefined. */
export function baseUrlIssue (url: URL): string | undefined {
  if (url.search !== '' || url.hash !== '') return 'must not carry a query or fragment'
  // It is shown in logs and /routes; credentials belong in `auth`.
  if (url.username !== '' || url.password !== '') return 'must not carry user:password (put credentials in auth)'
  return undefined
}

export const nonEmpty = z.string().check(z.minLength(1, 'must not be empty'))
export const positiveMs = z.number().check(z.int(), z.positive())

/** A private key as PEM text, a JWK object, or a JWK as JSON text. */
export const privateKey = z.union([nonEmpty, z.record(z.string(), z.unknown())])

/** A header value the proxy sends as configured: a control character or line break would split the request. */
export const headerValue = nonEmpty.check(z.refine((v) => !/[^\t\x20-\x7e\x80-\xff]/.test(v), 'must not contain control characters or line breaks: it is sent in an HTTP header'))

/** A header name as given; sent lower-case. */
export const headerName = z.pipe(z._default(nonEmpty, 'authorization'), z.transform((h: string) => h.toLowerCase()))

/** Token request timeout in ms: shorter than an upstream's, so a hung token endpoint fails first. */
export const tokenTimeout = z._default(positiveMs, 10_000)

export const bodyEncoding = z.enum(['form', 'json'])

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** The certificates of a PEM text (a chain or a CA bundle), or undefined when it holds none or one that does not parse. */
export function pemCertificates (text: string): X509Certificate[] | undefined {
  const blocks = text.match(PEM_CERTIFICATE)
  if (blocks === null) return undefined
  try {
    return blocks.map((block) => new X509Certificate(block))
  } catch {
    return undefined
  }
}

// Messages never quote the text: a key is a secret, and every PEM of `tls` is handled as one.
const certificates = nonEmpty.check(z.refine((text) => pemCertificates(text) !== undefined, 'is not readable as PEM certificates (-----BEGIN CERTIFICATE-----)'))
const pemKey = nonEmpty.check(z.refine((text) => {
  try {
    createPrivateKey(text)
    return true
  } catch {
    return false
  }
}, 'is not readable as an unencrypted PEM private key'))

/**
 * TLS client settings (route `tls`, `auth.tls`): a client certificate with
 * its key, and CAs added to the system ones. PEM text, usually `${file:...}`.
 */
export const tlsOptions = z.strictObject({
  /** The client certificate, then any intermediates. */
  cert: z.optional(certificates),
  key: z.optional(pemKey),
  /** Trusted besides the system CAs, never instead of them. */
  ca: z.optional(certificates)
}).check(z.superRefine((tls, ctx) => {
  if (tls.cert !== undefined && tls.key === undefined) ctx.addIssue({ code: 'custom', path: ['key'], message: 'is required with cert' })
  if (tls.key !== undefined && tls.cert === undefined) ctx.addIssue({ code: 'custom', path: ['cert'], message: 'is required with key' })
  if (tls.cert === undefined || tls.key === undefined) return
  const [leaf] = pemCertificates(tls.cert) ?? []
  // Unreadable ones are reported by the fields' own checks.
  if (leaf === undefined) return
  let matches: boolean
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(tls.key))
  } catch {
    return
  }
  if (!matches) ctx.addIssue({ code: 'custom', path: ['key'], message: 'is not the private key of cert (the first certificate in it)' })
}))

/**
 * An issue raised inside a `z.transform`: zod/mini's transforms get the bare
 * parse payload, which has no `addIssue`; pushed as zod's classic API does it,
 * so the message and key path read the same.
 */
export function transformIssue (payload: z.core.ParsePayload, issue: { message: string, path?: PropertyKey[] } & Record<string, unknown>): void {
  payload.issues.push({ code: 'custom', input: payload.value, ...issue } as z.core.$ZodRawIssue)
}

export type TlsOptions = z.output<typeof tlsOptions>
