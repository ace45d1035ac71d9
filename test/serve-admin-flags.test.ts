import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { CLI, ROOT, runCli, tempDir } from './cli-helpers.js'
import { freePort } from './helpers.js'
import { writeConfig } from './operability-helpers.js'
import { call } from './token-lifecycle-helpers.js'

/** `serve --admin-host H --admin-port N` put the admin where a container needs it, like --host/--port for the proxy. */
const routes = { api: { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 'admin-flags-static-key' } } }

test('--admin-host and --admin-port move the admin port (and turn on an admin the file has off)', async (t) => {
  const file = join(tempDir(t), 'config.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port: await freePort() }, admin: false, routes })
  const adminPort = await freePort()
  const child = spawn(process.execPath, [CLI, 'serve', '-c', file, '--admin-host', '127.0.0.1', '--admin-port', String(adminPort)], {
    cwd: ROOT, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const adminLine = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no admin listening line; stderr: ${stderr}`)), 15_000)
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`serve exited; stderr: ${stderr}`)) })
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      for (const line of stdout.split('\n').slice(0, -1)) {
        const parsed = JSON.parse(line) as Record<string, unknown>
        if (parsed.event === 'listening' && parsed.listener === 'admin') {
          clearTimeout(timer)
          resolve(parsed)
        }
      }
    })
  })
  assert.equal(adminLine.url, `http://127.0.0.1:${adminPort}`)
  const health = await call(`http://127.0.0.1:${adminPort}/healthz`)
  assert.equal(health.status, 200)
})

test('bad --admin-host / --admin-port values are usage errors (exit 2)', async (t) => {
  const file = join(tempDir(t), 'config.yaml')
  writeConfig(file, { routes })
  for (const [args, message] of [
    [['--admin-port', 'abc'], '--admin-port must be a number from 0 to 65535, not "abc"'],
    [['--admin-port', '70000'], '--admin-port must be a number from 0 to 65535, not "70000"'],
    [['--admin-host', ''], '--admin-host must be a host name or an IP address, not ""'],
    [['--admin-host', 'evil.example/x'], '--admin-host must be a host name or an IP address, not "evil.example/x"'],
    [['--host', 'a b'], '--host must be a host name or an IP address, not "a b"']
  ] as const) {
    const run = await runCli(['serve', '-c', file, ...args])
    assert.equal(run.code, 2, args.join(' '))
    assert.ok(run.stderr.startsWith(`bearer-proxy: ${message}\n`), `${args.join(' ')}: ${run.stderr}`)
    assert.match(run.stderr, /--admin-host H\] \[--admin-port N\]/, 'the usage text names the flags')
  }
})

test('--host or --admin-port with a socket listener in the config is a usage error, not a silent switch to TCP', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.yaml')
  writeConfig(file, { listen: { path: join(dir, 'p.sock') }, admin: { path: join(dir, 'a.sock') }, routes })
  const host = await runCli(['serve', '-c', file, '--host', '127.0.0.1'])
  assert.equal(host.code, 2)
  assert.match(host.stderr, /^bearer-proxy: --host and --port set a TCP address, but the config listens on a Unix socket \(listen\.path\)/)
  const admin = await runCli(['serve', '-c', file, '--admin-port', '9901'])
  assert.equal(admin.code, 2)
  assert.match(admin.stderr, /\(admin\.path\)/)
})
