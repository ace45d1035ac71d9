import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.js'
import { runCli, tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer, type TestProxy } from './helpers.js'
import { settingsTag, tokenFile, tokenFiles } from './state-files.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const HOUR = 3600_000
const posix = process.platform === 'win32' ? 'POSIX modes, links and FIFOs' : false

function storeFailures (proxy: TestProxy): string[] {
  return proxy.logs.lines.filter((l) => l.event === 'token_store_failed').map((l) => String(l.reason))
}

/**
 * The config load checks the state dir, but it may be opened up, replaced or
 * (when missing at the start) created by someone else later: the store checks
 * it at every use, refuses it, and the proxy goes on with tokens in memory.
 */
for (const [what, tamper, why] of [
  ['made writable by others (0777)', (dir: string) => chmodSync(dir, 0o777), /^state dir refused: .* may be written by other users \(mode 0777\)/],
  ['removed and created again, writable by others', (dir: string) => {
    rmSync(dir, { recursive: true })
    mkdirSync(dir)
    chmodSync(dir, 0o777)
  }, /^state dir refused: .* may be written by other users \(mode 0777\)/],
  ['replaced by a symbolic link to another folder', (dir: string) => {
    const elsewhere = `${dir}-elsewhere`
    renameSync(dir, elsewhere)
    symlinkSync(elsewhere, dir)
  }, /^state dir refused: .* is a symbolic link; refused, as it could be pointed at another folder/]
] as const) {
  test(`a state dir ${what} after the start is refused at its next use: nothing is read from it or written to it`, { skip: posix }, async (t) => {
    const clock = new ManualClock()
    const tokens = await tokenServer(t)
    const upstream = await recordingUpstream(t)
    const dir = join(tempDir(t), 'state')
    const proxy = await startProxy(t, { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })
    assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
    const file = tokenFile(dir, 'api')
    const key = readFileSync(join(dir, '.key'))
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    assert.deepEqual(storeFailures(proxy), [])

    tamper(dir)
    // Someone else's token planted where the next renewal reads the store, newer than the one held.
    writeFileSync(join(dir, '.key'), key, { mode: 0o600 })
    const later = clock.now() + 2 * HOUR
    writeFileSync(file, JSON.stringify({ ...stored, token: { accessToken: 'planted', obtainedAt: later, expiresAt: later + HOUR } }), { mode: 0o600 })
    clock.advance(2 * HOUR)
    const res = await call(`${proxy.url}/api/b`)
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'], 'renewed alone; the planted token was not used')
    const failures = storeFailures(proxy)
    assert.ok(failures.length > 0, 'logged as a store failure')
    for (const reason of failures) assert.match(reason, why)
    // Nothing written there: the new token stays in memory only.
    assert.match(readFileSync(file, 'utf8'), /planted/)
    assert.deepEqual(tokenFiles(dir, 'api'), [file.slice(dir.length + 1)])
  })
}

// Run as the CLI, bounded in time: a regression would block reading the FIFO forever; then the
// CLI is killed and the test fails, rather than hang the test run.
test('a FIFO planted under a token file\'s name is not waited on: ignored, and a fresh token obtained and stored', { skip: posix }, async (t) => {
  const tokens = await tokenServer(t)
  const base = tempDir(t)
  const dir = join(base, 'state')
  mkdirSync(dir, { mode: 0o700 })
  const config = { stateDir: dir, routes: { api: clientCredentialsRoute('http://127.0.0.1:9', tokens.tokenUrl) } }
  const cfg = join(base, 'cfg.json')
  writeFileSync(cfg, JSON.stringify(config))
  const name = `api.${await settingsTag(dir, parseConfig(config, { env: {} }).routes[0]?.auth)}.token.json`
  // Under both names the store reads: its own, and the one earlier versions used.
  for (const fifo of [name, 'api.token.json']) execFileSync('mkfifo', [join(dir, fifo)], { timeout: 5000 })

  const result = await runCli(['token', 'api', '-c', cfg], { timeoutMs: 15_000 })
  assert.equal(result.signal, null, 'the CLI was killed: it waited on the FIFO')
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.stdout.trim(), 'token-1')
  assert.equal(tokens.calls.length, 1)
  assert.ok(lstatSync(join(dir, name)).isFile(), 'the token was stored in place of the FIFO')
  assert.match(readFileSync(join(dir, name), 'utf8'), /token-1/)
})
