import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli, tempDir } from './cli-helpers.js'
import { freePort, listen } from './helpers.js'
import { writeConfig } from './operability-helpers.js'

/**
 * `serve` with a port that another process holds: exit 1 with an error that
 * names the listener and its address, and no line that says anything listens.
 */
const routes = { api: { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 'busy-port-static-key' } } }

function jsonLines (stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
}

test('a busy admin port: exit 1 naming the admin port, and no "proxy listening" line', async (t) => {
  const busy = await listen(t, (_req, res) => { res.end() })
  const file = join(tempDir(t), 'config.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port: await freePort() }, admin: { host: '127.0.0.1', port: busy.port }, routes })
  const run = await runCli(['serve', '-c', file], { timeoutMs: 20_000 })
  assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`)
  assert.equal(run.stderr.trim(), `bearer-proxy: admin port 127.0.0.1:${busy.port} is in use (EADDRINUSE)`)
  const lines = jsonLines(run.stdout)
  assert.deepEqual(lines.filter((l) => l.event === 'listening' || l.event === 'route'), [], 'nothing was announced as ready')
  assert.ok(!run.stdout.includes('proxy listening'))
})

test('a busy proxy port: exit 1 naming the proxy port, and the admin port is not announced either', async (t) => {
  const busy = await listen(t, (_req, res) => { res.end() })
  const file = join(tempDir(t), 'config.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port: busy.port }, admin: { host: '127.0.0.1', port: await freePort() }, routes })
  const run = await runCli(['serve', '-c', file], { timeoutMs: 20_000 })
  assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`)
  assert.equal(run.stderr.trim(), `bearer-proxy: proxy port 127.0.0.1:${busy.port} is in use (EADDRINUSE)`)
  assert.deepEqual(jsonLines(run.stdout).filter((l) => l.event === 'listening'), [])
})

test('--admin-port names the port it was given when that one is busy', async (t) => {
  const busy = await listen(t, (_req, res) => { res.end() })
  const file = join(tempDir(t), 'config.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port: await freePort() }, admin: false, routes })
  const run = await runCli(['serve', '-c', file, '--admin-host', '127.0.0.1', '--admin-port', String(busy.port)], { timeoutMs: 20_000 })
  assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`)
  assert.equal(run.stderr.trim(), `bearer-proxy: admin port 127.0.0.1:${busy.port} is in use (EADDRINUSE)`)
})
