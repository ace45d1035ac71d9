/** The decoded NETOSECRET: base64 of a JSON object with these fields (Netography API key). */
export interface Netosecret {
  url: string
  shortname: string
  appname: string
  appkey: string
  sharedsecret: string
}

const FIELDS = ['url', 'shortname', 'appname', 'appkey', 'sharedsecret'] as const

/** Decodes a NETOSECRET; on failure returns a message that never quotes the secret. */
export function decodeNetosecret (text: string): Netosecret | string {
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(text.trim(), 'base64').toString('utf8'))
  } catch {
    return 'is not base64 of a JSON object'
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return 'is not base64 of a JSON object'
  const record = json as Record<string, unknown>
  const missing = FIELDS.filter((f) => typeof record[f] !== 'string' || record[f] === '')
  if (missing.length > 0) return `lacks ${missing.map((f) => `"${f}"`).join(', ')}`
  try {
    const url = new URL(record.url as string)
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return '"url" must be an http(s) URL'
  } catch {
    return '"url" must be an http(s) URL'
  }
  return Object.fromEntries(FIELDS.map((f) => [f, record[f]])) as unknown as Netosecret
}

/** The API's base URL: the secret's `url` without a trailing `/api/v1`. */
export function netographyBase (secret: Netosecret): string {
  return secret.url.replace(/\/+$/, '').replace(/\/api\/v1$/, '')
}
