import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { IncomingHttpHeaders } from 'node:http'
import { buildAdminApp } from '../src/admin/app.js'
import { createLogger } from '../src/logger.js'
import { runCli, tempDir } from './cli-helpers.js'
import { listen, readBody, recordingUpstream, sendJson, startProxy } from './helpers.js'

/*
 * A token endpoint that refuses every request and puts the request it got
 * into its error message, each route in another encoding (picked by the first
 * path segment of its token URL). None of the credentials may come out of the
 * proxy in any encoding: not in the 502, the logs, /routes, /metrics or
 * `check`, while the endpoint's own words still reach the client.
 */

/** Characters that every encoding changes: + & " \ space / = and 2-, 3- and 4-byte UTF-8. */
const SPICE = 'p+w&q"r\\ s/t=é✓😀'
/** Header values stay ASCII. */
const HEADER_SPICE = 'p+w&q"r\\ s/t='

function secret (label: string, spice = SPICE): string {
  return `${label}${spice}${randomBytes(3).toString('hex')}`
}

/** How the endpoint echoes what it got, and with which status. */
const MODES: Record<string, { status: number, echo: (request: Echoed) => string }> = {
  // The request as it came: the Authorization header, then the body (form- or JSON-encoded).
  header: { status: 401, echo: (r) => `authorization=${r.headers.authorization ?? ''} x-api-key=${String(r.headers['x-api-key'] ?? '')}` },
  body: { status: 400, echo: (r) => `body=${r.body}` },
  // Every value it decoded, again encoded in one of the ways servers write them.
  raw: { status: 401, echo: (r) => values(r).join(' ') },
  formlower: { status: 400, echo: (r) => values(r).map((v) => lowerHex(encodeURIComponent(v))).join(' ') },
  jsonascii: { status: 401, echo: (r) => asciiJson(values(r)) },
  base64: { status: 400, echo: (r) => values(r).map((v) => Buffer.from(v).toString('base64')).join(' ') },
  base64url: { status: 401, echo: (r) => values(r).map((v) => Buffer.from(v).toString('base64url')).join(' ') }
}

interface Echoed {
  mode: string
  headers: IncomingHttpHeaders
  body: string
  /** Field values as the endpoint decoded them (body fields, Basic id and secret, the API key header). */
  fields: Record<string, string>
}

function values (r: Echoed): string[] {
  // Long enough to be a credential: grant types and the like would only fill the message.
  return Object.entries(r.fields).filter(([k]) => !['grant_type', 'client_assertion_type', 'scope', 'username', 'client_id', 'basic_id'].includes(k)).map(([, v]) => v)
}

function lowerHex (text: string): string {
  return text.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())
}

/** JSON as PHP or Python write it by default: non-ASCII as \uxxxx, "/" as "\/". */
function asciiJson (value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).replace(/\//g, '\\/')
}

function formDecode (text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '))
}

function decodeFields (headers: IncomingHttpHeaders, body: string): Record<string, string> {
  const fields: Record<string, string> = {}
  if ((headers['content-type'] ?? '').includes('json')) {
    for (const [k, v] of Object.entries(JSON.parse(body) as Record<string, unknown>)) fields[k] = typeof v === 'string' ? v : JSON.stringify(v)
  } else {
    for (const [k, v] of new URLSearchParams(body)) fields[k] = v
  }
  const basic = /^Basic (.+)$/.exec(headers.authorization ?? '')?.[1]
  if (basic !== undefined) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    fields.basic_id = formDecode(decoded.slice(0, colon))
    fields.basic_secret = formDecode(decoded.slice(colon + 1))
  }
  const apiKey = headers['x-api-key']
  if (typeof apiKey === 'string') fields.api_key = apiKey
  return fields
}

/**
 * Every way a value may show: raw, form- and URL-encoded (either hex case),
 * JSON-escaped (plain, ASCII-only, with "\/"), base64 and base64url of it and
 * of its form encoding (what a Basic header carries), and the base64 runs that
 * any base64 text holding it at any offset must contain.
 */
function encodings (value: string): Array<[string, string]> {
  const form = new URLSearchParams({ v: value }).toString().slice(2)
  const uri = encodeURIComponent(value)
  const json = JSON.stringify(value).slice(1, -1)
  const ascii = asciiJson(value).slice(1, -1)
  const out: Array<[string, string]> = [
    ['raw', value], ['form', form], ['form lower-case', lowerHex(form)], ['uri', uri], ['uri lower-case', lowerHex(uri)],
    ['json', json], ['json ascii', ascii], ['json ascii upper-case', ascii.replace(/\\u([0-9a-f]{4})/g, (_m, h: string) => `\\u${h.toUpperCase()}`)], ['json ascii, plain /', ascii.replace(/\\\//g, '/')]
  ]
  for (const [name, source] of [['', value], [' of the form encoding', form]] as const) {
    const bytes = Buffer.from(source)
    out.push([`base64${name}`, bytes.toString('base64')], [`base64url${name}`, bytes.toString('base64url')])
    for (let k = 0; k < 3; k++) {
      const encoded = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64')
      const core = encoded.slice(Math.ceil(8 * k / 6), Math.floor(8 * (k + bytes.length) / 6))
      out.push([`base64 run at offset ${k}${name}`, core], [`base64url run at offset ${k}${name}`, core.replace(/\+/g, '-').replace(/\//g, '_')])
    }
  }
  return out.filter(([, v]) => v.length >= 8)
}

/** A text and, when it is JSON, every string inside it (a message escaped once more on the wire). */
function readings (text: string): string[] {
  const out = [text]
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v)
    else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  try {
    walk(JSON.parse(text))
  } catch {}
  return out
}

test('credentials a refusing token endpoint echoes, in any encoding, never leave the proxy', async (t) => {
  const secrets: Record<string, string> = {
    basicSecret: secret('bas'),
    postSecret: secret('pos'),
    jsonSecret: secret('jsn'),
    passwordClientSecret: secret('pwc'),
    password: secret('pwd'),
    loginPassword: secret('lgp'),
    loginKey: secret('lgk', HEADER_SPICE),
    param: secret('prm'),
    refreshToken: secret('rtk'),
    claim: secret('clm'),
    jwtSecret: secret('jws')
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const env: Record<string, string> = { ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`S_${k}`, v])), S_privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
  const ref = (name: string): string => `\${env:S_${name}}`

  const received: Echoed[] = []
  const endpoint = await listen(t, async (req, res) => {
    const body = (await readBody(req)).toString('utf8')
    const mode = (req.url ?? '').split('/')[1] ?? ''
    const request: Echoed = { mode, headers: req.headers, body, fields: decodeFields(req.headers, body) }
    received.push(request)
    const how = MODES[mode] ?? (MODES.body as (typeof MODES)[string])
    sendJson(res, how.status, { error: 'invalid_client', error_description: `ECHO ${how.echo(request)}` })
  })
  const upstream = await recordingUpstream(t)

  /** Each scheme once per echo mode: route `<scheme>-<mode>`. */
  const schemes: Record<string, (tokenUrl: string) => Record<string, unknown>> = {
    basic: (tokenUrl) => ({ type: 'client_credentials', tokenUrl, clientId: 'basic-client', clientSecret: ref('basicSecret') }),
    post: (tokenUrl) => ({ type: 'client_credentials', tokenUrl, clientId: 'post-client', clientSecret: ref('postSecret'), clientAuth: 'client_secret_post' }),
    json: (tokenUrl) => ({ type: 'client_credentials', tokenUrl, clientId: 'json-client', clientSecret: ref('jsonSecret'), bodyEncoding: 'json' }),
    password: (tokenUrl) => ({ type: 'password', tokenUrl, clientId: 'pw-client', clientSecret: ref('passwordClientSecret'), username: 'user', password: ref('password') }),
    login: (tokenUrl) => ({ type: 'login', tokenUrl, body: { username: 'user', password: ref('loginPassword') }, headers: { 'x-api-key': ref('loginKey') } }),
    params: (tokenUrl) => ({ type: 'client_credentials', tokenUrl, clientAuth: 'none', params: { api_secret: ref('param') } }),
    refresh: (tokenUrl) => ({ type: 'refresh_token', tokenUrl, refreshToken: ref('refreshToken') }),
    jwtbearer: (tokenUrl) => ({ type: 'jwt_bearer', tokenUrl, secret: ref('jwtSecret'), claims: { iss: 'me', sub: 'me', tenant: ref('claim') } }),
    pkjwt: (tokenUrl) => ({ type: 'client_credentials', tokenUrl, clientId: 'pk-client', privateKey: ref('privateKey') })
  }
  const routes: Record<string, unknown> = {}
  for (const [scheme, auth] of Object.entries(schemes)) {
    for (const mode of Object.keys(MODES)) routes[`${scheme}-${mode}`] = { upstream: upstream.url, auth: auth(`${endpoint.url}/${mode}/token`) }
  }
  const names = Object.keys(routes)

  const proxy = await startProxy(t, { routes }, { env })
  const errorBodies: string[] = []
  for (const name of names) {
    const res = await fetch(`${proxy.url}/${name}/data`)
    const text = await res.text()
    errorBodies.push(text)
    assert.equal(res.status, 502, `${name}: ${text}`)
    const { error } = JSON.parse(text) as { error: { code: string, message: string } }
    assert.equal(error.code, 'TOKEN_REJECTED')
    // The endpoint's own words reach the client, whole (so nothing below was cut off unseen).
    assert.match(error.message, /invalid_client: ECHO /, name)
    // A signed assertion alone is longer than a message may be; every other echo must fit whole.
    if (!/^(pkjwt|jwtbearer)-/.test(name)) assert.ok(!error.message.includes('…'), `${name}: the echo fits the message: ${error.message}`)
  }
  const requestLines = (): number => proxy.logs.raw.filter((l) => l.includes('"msg":"request"')).length
  for (let i = 0; i < 200 && requestLines() < names.length; i++) await new Promise((resolve) => setTimeout(resolve, 10))

  const admin = await buildAdminApp(() => proxy, createLogger({ level: 'silent' }))
  t.after(() => admin.close())
  const adminBodies = await Promise.all(['/routes', '/metrics'].map(async (url) => (await admin.inject({ url })).body))

  // `check` in its own process, the same routes in a config file with the same references.
  const dir = tempDir(t)
  const file = join(dir, 'bearer-proxy.yaml')
  writeFileSync(file, JSON.stringify({ admin: false, routes }, null, 2))
  const requestsBeforeCheck = received.length
  const check = await runCli(['check', '-c', file], { env })
  assert.equal(check.code, 1, check.stderr)
  const checkLines = check.stdout.trimEnd().split('\n')
  assert.equal(checkLines.length, names.length, check.stdout)
  for (const line of checkLines) assert.match(line, /\terror\tinvalid_client: ECHO /)
  assert.equal(received.length, requestsBeforeCheck + names.length, 'check asked the endpoint once per route')

  // What the proxy itself sent: every value must not come back, and neither may the
  // header it sent, the Basic credentials in it, or the assertions it signed.
  const sent: Array<[string, string]> = []
  for (const r of received) {
    const authorization = r.headers.authorization
    if (authorization !== undefined) sent.push(['the Authorization header sent', authorization], ['the Basic credentials sent', authorization.replace(/^Basic /, '')])
    for (const field of ['client_assertion', 'assertion', 'refresh_token']) {
      const value = r.fields[field]
      if (value !== undefined) sent.push([`the ${field} sent`, value])
    }
  }
  assert.ok(sent.some(([what]) => what.includes('client_assertion')) && sent.some(([what]) => what === 'the assertion sent'), 'assertions were sent')

  const forbidden: Array<[string, string]> = [...Object.entries(secrets), ...sent].flatMap(([name, value]) => encodings(value).map(([how, v]): [string, string] => [`${name} (${how})`, v]))
  const places: Array<[string, string]> = [
    ...errorBodies.map((b, i): [string, string] => [`502 body of ${names[i] ?? i}`, b]),
    ...proxy.logs.raw.map((l, i): [string, string] => [`log line ${i}`, l]),
    ['/routes', adminBodies[0] ?? ''],
    ['/metrics', adminBodies[1] ?? ''],
    ['check stdout', check.stdout],
    ['check stderr', check.stderr]
  ]
  const leaks: string[] = []
  for (const [where, text] of places) {
    for (const reading of readings(text)) {
      for (const [what, value] of forbidden) if (reading.includes(value)) leaks.push(`${what} in ${where}`)
    }
  }
  assert.deepEqual([...new Set(leaks)], [])
})
