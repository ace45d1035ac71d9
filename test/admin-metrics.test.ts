import { test } from 'node:test'
import assert from 'node:assert/strict'
import { listen, recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { call } from './token-lifecycle-helpers.js'
import { canary, issuingTokenServer, startTestServer } from './operability-helpers.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

interface Exposition {
  samples: Sample[]
  help: Map<string, string>
  types: Map<string, string>
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*"'
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|NaN|[+-]Inf)'
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`)
const LABEL_PAIR = new RegExp(`(${'[a-zA-Z_][a-zA-Z0-9_]*'})="((?:[^"\\\\\\n]|\\\\.)*)"`, 'g')

/** Parses Prometheus text format 0.0.4, failing on any line that does not fit it. */
function parseExposition (text: string): Exposition {
  const samples: Sample[] = []
  const help = new Map<string, string>()
  const types = new Map<string, string>()
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
    if (comment !== null) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string]
      if (kind === 'HELP') help.set(name, rest)
      else types.set(name, rest)
      continue
    }
    assert.ok(!line.startsWith('#'), `line ${i + 1} is a comment that is neither HELP nor TYPE: ${line}`)
    const match = SAMPLE_LINE.exec(line)
    assert.ok(match !== null, `line ${i + 1} is not "name{labels} value": ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(LABEL_PAIR)) labels[pair[1] as string] = pair[2] as string
    const raw = match[3] as string
    samples.push({ name: match[1] as string, labels, value: raw.endsWith('Inf') ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw) })
  }
  return { samples, help, types }
}

/** The metric family a sample belongs to (histogram series carry suffixes). */
function family (name: string, types: Map<string, string>): string {
  if (types.has(name)) return name
  const base = name.replace(/_(bucket|sum|count|total|created)$/, '')
  return base
}

function value (exp: Exposition, name: string, labels: Record<string, string>): number | undefined {
  const found = exp.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} appears ${found.length} times`)
  return found[0]?.value
}

test('/metrics is Prometheus text with request, latency, upstream error, token, expiry and replay metrics per route', async (t) => {
  const clientSecret = canary('client-secret')
  // Issues unique tokens, each with a refresh token, so a replay's renewal is a refresh.
  const tokens = await issuingTokenServer(t)
  const { issued, refreshTokens } = tokens
  const refusing = await tokenServer(t, (_call, _n, res) => sendJson(res, 401, { error: 'invalid_client', error_description: 'unknown client' }))
  const failing = await tokenServer(t, (_call, _n, res) => sendJson(res, 500, { error: 'server_error' }))
  let refusedOnce = false
  const upstream = await recordingUpstream(t, (req, res) => {
    if (req.url.startsWith('/once') && !refusedOnce) {
      refusedOnce = true
      return sendJson(res, 401, { error: 'invalid_token' })
    }
    if (req.url.startsWith('/missing')) return sendJson(res, 404, { error: 'no such thing' })
    sendJson(res, 200, { ok: true })
  })
  // A port with nothing listening: the upstream connection fails.
  const gone = await listen(t, () => {})
  await new Promise<void>((resolve) => gone.server.close(() => resolve()))

  const cc = (tokenUrl: string, clientId: string): Record<string, unknown> => ({ type: 'client_credentials', tokenUrl, clientId, clientSecret })
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    routes: {
      api: { upstream: upstream.url, auth: cc(tokens.tokenUrl, 'api-client') },
      down: { upstream: gone.url, auth: cc(tokens.tokenUrl, 'down-client') },
      rejected: { upstream: upstream.url, auth: cc(refusing.tokenUrl, 'rejected-client') },
      unavailable: { upstream: upstream.url, auth: cc(failing.tokenUrl, 'unavailable-client') }
    }
  })

  const expect = async (path: string, status: number, init: RequestInit = {}): Promise<void> => {
    const res = await call(`${server.url}${path}`, init)
    assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}: ${res.text}`)
  }
  await expect('/api/a', 200)
  await expect('/api/b', 200)
  await expect('/api/c', 200, { method: 'POST', body: 'x' })
  await expect('/api/missing', 404)
  await expect('/down/a', 502)
  await expect('/rejected/a', 502)
  await expect('/unavailable/a', 503)
  // Last, as its renewal waits out the 1 s between token requests of a route.
  await expect('/api/once', 200)
  assert.ok(refusedOnce)
  assert.equal(tokens.calls.at(-1)?.form.get('grant_type'), 'refresh_token', 'the replay renewed with the refresh token')

  // The request metrics are recorded when each response finishes: wait for the last one, bounded.
  let res = await call(`${server.adminUrl}/metrics`)
  for (let i = 0; i < 50 && !/bearer_proxy_requests_total\{[^}]*route="api"[^}]*\} 3\b/.test(res.text); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    res = await call(`${server.adminUrl}/metrics`)
  }
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
  const exp = parseExposition(res.text)

  // Every sample belongs to a family with HELP and TYPE.
  for (const sample of exp.samples) {
    const name = family(sample.name, exp.types)
    assert.ok(exp.types.has(name), `no TYPE for ${sample.name}`)
    assert.ok(exp.help.has(name), `no HELP for ${sample.name}`)
  }
  assert.equal(exp.types.get('bearer_proxy_requests_total'), 'counter')
  assert.equal(exp.types.get('bearer_proxy_request_duration_seconds'), 'histogram')
  assert.equal(exp.types.get('bearer_proxy_upstream_errors_total'), 'counter')
  assert.equal(exp.types.get('bearer_proxy_token_requests_total'), 'counter')
  assert.equal(exp.types.get('bearer_proxy_token_expiry_seconds'), 'gauge')
  assert.equal(exp.types.get('bearer_proxy_replays_total'), 'counter')

  // Requests by route, method and status class: exact counts.
  const requests = exp.samples.filter((s) => s.name === 'bearer_proxy_requests_total')
  const seen = Object.fromEntries(requests.map((s) => [`${s.labels.route} ${s.labels.method} ${s.labels.status_class}`, s.value]))
  assert.deepEqual(seen, {
    'api GET 2xx': 3,
    'api POST 2xx': 1,
    'api GET 4xx': 1,
    'down GET 5xx': 1,
    'rejected GET 5xx': 1,
    'unavailable GET 5xx': 1
  })

  // Latency histogram per route: cumulative buckets ending at +Inf = count.
  const buckets = exp.samples.filter((s) => s.name === 'bearer_proxy_request_duration_seconds_bucket' && s.labels.route === 'api')
  assert.ok(buckets.length >= 2)
  for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] as Sample).value >= (buckets[i - 1] as Sample).value, 'buckets are cumulative')
  assert.equal(buckets.at(-1)?.labels.le, '+Inf')
  assert.equal(buckets.at(-1)?.value, 5)
  assert.equal(value(exp, 'bearer_proxy_request_duration_seconds_count', { route: 'api' }), 5)
  const sum = value(exp, 'bearer_proxy_request_duration_seconds_sum', { route: 'api' })
  assert.ok(sum !== undefined && sum > 0 && sum < 30, `sum ${sum}`)
  assert.equal(value(exp, 'bearer_proxy_request_duration_seconds_count', { route: 'down' }), 1)

  assert.equal(value(exp, 'bearer_proxy_upstream_errors_total', { route: 'down', code: 'UPSTREAM_UNAVAILABLE' }), 1)
  assert.equal(exp.samples.filter((s) => s.name === 'bearer_proxy_upstream_errors_total' && s.labels.route !== 'down').length, 0)

  // Token requests by outcome: api obtained then refreshed (the replay), down obtained, one refusal, one failure.
  const outcomes = Object.fromEntries(exp.samples.filter((s) => s.name === 'bearer_proxy_token_requests_total').map((s) => [`${s.labels.route} ${s.labels.outcome}`, s.value]))
  assert.deepEqual(outcomes, {
    'api obtained': 1,
    'api refreshed': 1,
    'down obtained': 1,
    'rejected rejected': 1,
    'unavailable unavailable': 1
  })

  // Expiry per route that holds a token, close to expires_in; none for routes without one.
  for (const route of ['api', 'down']) {
    const left = value(exp, 'bearer_proxy_token_expiry_seconds', { route })
    assert.ok(left !== undefined && left > 3590 && left <= 3600, `${route} expiry ${left}`)
  }
  assert.equal(value(exp, 'bearer_proxy_token_expiry_seconds', { route: 'rejected' }), undefined)
  assert.equal(value(exp, 'bearer_proxy_token_expiry_seconds', { route: 'unavailable' }), undefined)

  assert.equal(value(exp, 'bearer_proxy_replays_total', { route: 'api' }), 1)

  // The process's default metrics are there too.
  assert.ok(exp.samples.some((s) => s.name === 'process_cpu_seconds_total' || s.name.startsWith('nodejs_')), 'default process metrics')

  for (const secret of [clientSecret, ...issued, ...refreshTokens]) assert.ok(!res.text.includes(secret), 'a token or secret appears in /metrics')
})
