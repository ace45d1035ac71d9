/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.js'
import { MAX_SECRET_FILE_BYTES } from '../src/config/secrets.js'
import { runCli, tempDir } from './cli-helpers.js'
import { recordingUpstream } from './helpers.js'
import { freePort, spawnServe, writeConfig } from './operability-helpers.js'
import { parseIssues } from './config-helpers.js'

const UPSTREAM = 'http://127.0.0.1:9'
const fromFile = (path: string): Record<string, unknown> => ({ routes: { x: { upstream: UPSTREAM, auth: { type: 'static', token: `\${file:${path}}` } } } })

function tokenOf (raw: Record<string, unknown>): string | undefined {
  const auth = parseConfig(raw, { env: {} }).routes[0]?.auth
  return auth?.type === 'static' ? auth.token : undefined
}

/** A FIFO nobody writes to: reading it would wait forever. */
function fifo (dir: string): string {
  const path = join(dir, 'secret.fifo')
  execFileSync('mkfifo', [path], { timeout: 5000 })
  return path
}

const skipWindows = process.platform === 'win32' ? 'no FIFOs or devices here' : false

// Run in a child process, bounded in time: a regression hangs that process, not the test runner.
test('CLI: ${file:...} naming a FIFO is refused at once with the key path, not waited on', { skip: skipWindows }, async (t) => {
  const dir = tempDir(t)
  const path = fifo(dir)
  const file = join(dir, 'cfg.yaml')
  writeConfig(file, fromFile(path))
  const result = await runCli(['check', '-c', file], { timeoutMs: 15_000 })
  assert.equal(result.signal, null, 'the CLI was killed: it waited on the FIFO')
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, `routes.x.auth.token: secret file ${path} is a FIFO (named pipe), not a regular file\n`)
})

test('SIGHUP with a ${file:...} naming a FIFO is refused, and the proxy keeps running', { skip: skipWindows }, async (t) => {
  const dir = tempDir(t)
  const upstream = await recordingUpstream(t)
  const port = await freePort()
  const file = join(dir, 'cfg.yaml')
  const config = (token: string): Record<string, unknown> => ({ listen: { host: '127.0.0.1', port }, admin: false, routes: { x: { upstream: upstream.url, auth: { type: 'static', token } } } })
  writeConfig(file, config('plain-token'))
  const serve = await spawnServe(t, file)

  const path = fifo(dir)
  writeConfig(file, config(`\${file:${path}}`))
  serve.child.kill('SIGHUP')
  const refused = await serve.waitForLog((l) => l.event === 'reload_refused' || l.event === 'reloaded', 'the reload outcome', 10_000)
  assert.equal(refused.event, 'reload_refused')
  assert.deepEqual(refused.issues, [`routes.x.auth.token: secret file ${path} is a FIFO (named pipe), not a regular file`])
  const answer = await fetch(`http://127.0.0.1:${port}/x/after`)
  assert.equal(answer.status, 200, 'the running config still serves')
})

test('a directory or a device is not a secret file', { skip: skipWindows }, (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'secrets'))
  assert.deepEqual(parseIssues(fromFile(join(dir, 'secrets'))), [`routes.x.auth.token: secret file ${join(dir, 'secrets')} is a directory, not a regular file`])
  assert.deepEqual(parseIssues(fromFile('/dev/null')), ['routes.x.auth.token: secret file /dev/null is a device, not a regular file'])
})

test('a secret file larger than 1 MiB is refused; one of exactly 1 MiB is read', (t) => {
  const dir = tempDir(t)
  assert.equal(MAX_SECRET_FILE_BYTES, 1024 * 1024)
  const big = join(dir, 'big')
  writeFileSync(big, 'a'.repeat(MAX_SECRET_FILE_BYTES + 1))
  assert.deepEqual(parseIssues(fromFile(big)), [`routes.x.auth.token: secret file ${big} is larger than 1 MiB`])
  const fits = join(dir, 'fits')
  writeFileSync(fits, 'b'.repeat(MAX_SECRET_FILE_BYTES))
  assert.equal(tokenOf(fromFile(fits))?.length, MAX_SECRET_FILE_BYTES)
})

test('a symbolic link to a regular file is read (mounted secrets are links)', { skip: skipWindows }, (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'real'), 'linked-secret\n')
  symlinkSync(join(dir, 'real'), join(dir, 'link'))
  assert.equal(tokenOf(fromFile(join(dir, 'link'))), 'linked-secret')
})
