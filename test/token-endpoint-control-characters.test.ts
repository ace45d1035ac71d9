import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'

/**
 * An endpoint's error text as a hostile token endpoint may write it: a line break that forges a
 * second `check` line, a tab, a terminal escape that writes the clipboard (OSC 52) and one that
 * erases the line, and bidi controls that reorder what a person reads.
 */
const HOSTILE = 'bad\r\napi\t/api\tclient_credentials\tok\texpires in 3599s\u001b]52;c;aGk=\u0007\u001b[2K\u202Ereversed\u2066x\u2069\u0000end'
const CONTROL = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/u

function refusingServer (t: Parameters<typeof tokenServer>[0]) {
  return tokenServer(t, (_call, _n, res) => sendJson(res, 400, { error: 'invalid_client', error_description: HOSTILE }))
}

test('a token endpoint\'s error text reaches the client\'s 502 body without control characters', async (t) => {
  const tokens = await refusingServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const res = await fetch(`${proxy.url}/api/x`)
  const body = await res.json() as { error: { code: string, message: string } }
  assert.equal(res.status, 502)
  assert.equal(body.error.code, 'TOKEN_REJECTED')
  // The endpoint's own words still arrive, made printable.
  assert.match(body.error.message, /invalid_client: bad api \/api client_credentials ok expires in 3599s/)
  assert.match(body.error.message, /reversed x end/)
  assert.doesNotMatch(body.error.message, CONTROL)
})

test('`check` prints one line per route however the token endpoint words its refusal: no forged line, no terminal escape', async (t) => {
  const tokens = await refusingServer(t)
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ admin: false, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }))
  const run = await runCli(['check', '-c', file])
  assert.equal(run.code, 1, run.stderr)
  const lines = run.stdout.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, run.stdout)
  assert.match(lines[0] as string, /^api\t\/api\tclient_credentials\terror\t/)
  // Tabs separate the columns; the endpoint's text brings none of its own, nor any other control.
  assert.equal((lines[0] as string).split('\t').length, 5, lines[0])
  assert.doesNotMatch(run.stdout.replaceAll('\t', '').replaceAll('\n', ''), CONTROL)
  assert.doesNotMatch(run.stderr, CONTROL)
})
