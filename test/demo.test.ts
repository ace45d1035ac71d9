import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { CLI, ROOT } from './cli-helpers.js'

/** Generous: the child loads the whole app; on a busy machine that can take seconds. */
const STARTUP_LIMIT_MS = 20_000

test('demo: token server, API and proxy in one process, usable with plain curl', async (t) => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first`)
  const child = spawn(process.execPath, [CLI, 'demo', '--port', '0', '--log-level', 'warn'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })

  let stderr = ''
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  // Wait, bounded in time, for the instructions on stderr (or for the child to die).
  const proxyUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no curl lines within ${STARTUP_LIMIT_MS} ms; stderr: ${stderr}`)), STARTUP_LIMIT_MS)
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      const match = /curl (http:\/\/127\.0\.0\.1:\d+)\/demo\/hello\b/.exec(stderr)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1] as string)
      }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited with ${code}; stderr: ${stderr}`)) })
  })
  assert.match(stderr, /curl -X POST http:\/\/127\.0\.0\.1:\d+\/demo\/echo/)
  assert.match(stderr, /curl http:\/\/127\.0\.0\.1:\d+\/nowhere/)
  assert.notEqual(new URL(proxyUrl).port, '0')

  const hello = await fetch(`${proxyUrl}/demo/hello?x=1`)
  assert.equal(hello.status, 200)
  const greeting = await hello.json() as { method: string, path: string, query: Record<string, string>, token: { number: number, subject: string, expiresIn: number } }
  assert.equal(greeting.method, 'GET')
  assert.equal(greeting.path, '/hello')
  assert.deepEqual(greeting.query, { x: '1' })
  // The demo API only answers 200 to a token it issued: the proxy obtained one.
  assert.equal(greeting.token.number, 1)
  assert.equal(typeof greeting.token.subject, 'string')
  assert.ok(greeting.token.expiresIn > 0)

  const payload = JSON.stringify({ hello: 'world', n: 42 })
  const echo = await fetch(`${proxyUrl}/demo/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload })
  assert.equal(echo.status, 200)
  const echoed = await echo.json() as { method: string, path: string, body: string, token: { number: number } }
  assert.equal(echoed.method, 'POST')
  assert.equal(echoed.path, '/echo')
  assert.equal(echoed.body, payload)
  assert.equal(echoed.token.number, 1, 'the cached token is reused')

  const nowhere = await fetch(`${proxyUrl}/nowhere`)
  assert.equal(nowhere.status, 404)
  const error = await nowhere.json() as { error: { code: string, message: string } }
  assert.equal(error.error.code, 'ROUTE_NOT_FOUND')
  assert.match(error.error.message, /\/demo/)

  // A client's own Authorization does not get through: the demo API still sees the proxy's token.
  const spoofed = await fetch(`${proxyUrl}/demo/hello`, { headers: { authorization: 'Bearer not-a-demo-token' } })
  assert.equal(spoofed.status, 200)
  await spoofed.arrayBuffer()

  child.kill('SIGTERM')
  const [code, signal] = await exited
  assert.equal(signal, null)
  assert.equal(code, 0)
  // At --log-level warn the successful requests log nothing.
  assert.equal(stdout, '')
})
