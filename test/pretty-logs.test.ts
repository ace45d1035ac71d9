import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { colourWanted, createLogger } from '../src/logger.js'
import { CLI, ROOT, runCli, tempDir } from './cli-helpers.js'
import { freePort, LogSink, recordingUpstream } from './helpers.js'
import { writeConfig } from './operability-helpers.js'

/** `[12:34:56.789] INFO: ...`: the start of every pretty line. */
const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /
const ESC = '\u001b'
const STATIC_TOKEN = 'static-token-CANARY-pretty-71c0'

test('colour only on a terminal, and never with NO_COLOR set', () => {
  assert.equal(colourWanted({ isTTY: true }, {}), true)
  assert.equal(colourWanted({ isTTY: true }, { NO_COLOR: '1' }), false)
  assert.equal(colourWanted({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)')
  assert.equal(colourWanted({ isTTY: true }, { TERM: 'dumb' }), false)
  assert.equal(colourWanted({ isTTY: false }, {}), false)
  assert.equal(colourWanted({}, {}), false)
})

test('pretty lines: one per event, errors and multi-line messages included, secrets still redacted', () => {
  const sink = new LogSink()
  const logger = createLogger({ pretty: true, colour: false, destination: sink, level: 'debug' })
  logger.info({ event: 'listening', url: 'http://127.0.0.1:1' }, 'listening')
  logger.error({ event: 'reload_refused', issues: ['a: b', 'c: d'] }, 'new config refused')
  logger.error({ err: new Error('boom\nsecond line') }, 'failed')
  logger.warn({ token: STATIC_TOKEN, headers: { authorization: `Bearer ${STATIC_TOKEN}` } }, `two\nlines and an escape ${ESC}[31m`)
  assert.equal(sink.raw.length, 4, sink.text())
  for (const line of sink.raw) assert.match(line, PRETTY_LINE)
  assert.match(sink.raw[2] as string, /^.*ERROR: failed \{"err":\{"type":"Error","message":"boom\\nsecond line","stack":"Error: boom\\nsecond line\\n/)
  assert.match(sink.raw[3] as string, /WARN: two lines and an escape \[31m \{"token":"\[redacted\]","headers":\{"authorization":"\[redacted\]"\}\}$/)
  assert.ok(!sink.text().includes(STATIC_TOKEN))
  assert.ok(!sink.text().includes(ESC))
})

/** Runs `serve --pretty` with stdout piped until it has logged a proxied request; returns all of stdout. */
async function servePrettyPiped (t: TestContext, env: NodeJS.ProcessEnv): Promise<string> {
  assert.ok(existsSync(CLI), 'run "npm run build" first')
  const upstream = await recordingUpstream(t)
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port }, admin: false, routes: { x: { upstream: upstream.url, auth: { type: 'static', token: STATIC_TOKEN } } } })
  const child = spawn(process.execPath, [CLI, 'serve', '--pretty', '-c', file], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const waitFor = async (what: RegExp): Promise<void> => {
    for (let i = 0; i < 300 && !what.test(stdout); i++) {
      if (child.exitCode !== null) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.match(stdout, what, `stdout: ${stdout}\nstderr: ${stderr}`)
  }
  await waitFor(/listening/)
  const res = await fetch(`http://127.0.0.1:${port}/x/hello`, { headers: { authorization: 'Bearer client-own-CANARY' } })
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  await waitFor(/"status":200/)
  child.kill('SIGTERM')
  await exited
  return stdout
}

test('serve --pretty into a pipe: no colour, one line per event, no token', async (t) => {
  const stdout = await servePrettyPiped(t, {})
  const lines = stdout.split('\n').filter((l) => l !== '')
  assert.ok(lines.length >= 2, stdout)
  for (const line of lines) assert.match(line, PRETTY_LINE, `not one line per event: ${JSON.stringify(line)}`)
  assert.ok(!stdout.includes(ESC), 'colour codes in a pipe')
  assert.ok(!stdout.includes(STATIC_TOKEN) && !stdout.includes('client-own-CANARY'))
})

/** `script` gives the child a terminal; util-linux's spelling. */
const hasScript = await new Promise<boolean>((resolve) => execFile('script', ['--version'], { timeout: 5000 }, (err) => resolve(err === null)))

function prettyOnTerminal (t: TestContext, env: NodeJS.ProcessEnv): Promise<string> {
  const program = join(tempDir(t), 'log-once.mjs')
  const logger = new URL('../dist/logger.js', import.meta.url).href
  writeFileSync(program, `const m = await import(${JSON.stringify(logger)})\nm.createLogger({ pretty: true }).info({ event: 'e' }, 'hello')\n`)
  return new Promise((resolve, reject) => {
    execFile('script', ['-qec', `"${process.execPath}" "${program}"`, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH, TERM: 'xterm', ...env }, timeout: 20_000, encoding: 'utf8' },
      (err, stdout) => err === null ? resolve(stdout) : reject(err))
  })
}

test('on a terminal: colour, unless NO_COLOR is set', { skip: hasScript ? false : 'needs util-linux script for a terminal' }, async (t) => {
  assert.ok(existsSync(CLI), 'run "npm run build" first')
  const [coloured, plain] = await Promise.all([prettyOnTerminal(t, {}), prettyOnTerminal(t, { NO_COLOR: '1' })])
  assert.match(coloured, /INFO/)
  assert.ok(coloured.includes(ESC), `no colour on a terminal: ${JSON.stringify(coloured)}`)
  assert.match(plain, /INFO: hello \{"event":"e"\}/)
  assert.ok(!plain.includes(ESC), `colour despite NO_COLOR: ${JSON.stringify(plain)}`)
})

/**
 * `serve` on a terminal, up to its first log line: a route in cleartext beyond this machine is
 * warned about before listening, and the port is taken, so serve stops right after (exit 1).
 */
async function serveOnTerminal (t: TestContext, flags: string[]): Promise<string> {
  const busy = await recordingUpstream(t)
  const file = join(tempDir(t), 'cfg.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port: busy.port }, admin: false, routes: { x: { upstream: 'http://api.example.com', auth: { type: 'static', token: STATIC_TOKEN } } } })
  return new Promise((resolve, reject) => {
    execFile('script', ['-qc', `"${process.execPath}" "${CLI}" serve -c "${file}" ${flags.join(' ')}`, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH, TERM: 'dumb' }, timeout: 20_000, encoding: 'utf8' },
      (err, stdout) => err !== null && err.killed ? reject(err) : resolve(stdout))
  })
}

test('serve on a terminal logs readable lines by default; --json keeps JSON', { skip: hasScript ? false : 'needs util-linux script for a terminal' }, async (t) => {
  assert.ok(existsSync(CLI), 'run "npm run build" first')
  const [plain, json] = await Promise.all([serveOnTerminal(t, []), serveOnTerminal(t, ['--json'])])
  assert.match(plain, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: routes\.x\.upstream is plain http/m, plain)
  assert.doesNotMatch(plain, /"level":/)
  assert.match(json, /^\{"level":40,.*"event":"cleartext"/m, json)
  assert.match(json, /in use/, 'and it stopped on the busy port')
})

test('serve --pretty --json is a usage error', async () => {
  const result = await runCli(['serve', '--pretty', '--json', '-c', 'nowhere.yaml'])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /^bearer-proxy: --pretty and --json exclude each other\n/)
})
