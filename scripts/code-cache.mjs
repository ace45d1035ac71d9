/**
 * `node scripts/code-cache.mjs tools|serve|undici`, run by the build: loads the
 * bundle dist/BUNDLE.js as the command does (dist/bundle-loader.js), runs it
 * once on loopback so the code a start runs is compiled, then writes V8's
 * code cache of it next to the bundle. One process per bundle, with no V8
 * flags, as the command runs.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))
const { CODE_CACHE_SUFFIX, loadBundle } = createRequire(import.meta.url)(join(DIST, 'bundle-loader.js'))

const bundle = process.argv[2]
if (!['tools', 'serve', 'undici'].includes(bundle)) throw new Error('usage: node scripts/code-cache.mjs tools|serve|undici')

const dir = mkdtempSync(join(tmpdir(), 'bearer-proxy-code-cache-'))
const lines = []
const io = { out: (line) => lines.push(line), err: (line) => lines.push(line) }
const file = join(DIST, `${bundle}.js`)
const { exports, script } = loadBundle(file)
if (script === undefined) throw new Error('code cache: run without --enable-source-maps')

try {
  if (bundle === 'tools') await warmTools()
  else if (bundle === 'serve') await warmServe()
  else await warmUndici()
  writeFileSync(`${file}${CODE_CACHE_SUFFIX}`, script.createCachedData())
} finally {
  rmSync(dir, { recursive: true, force: true })
}
// `serve` keeps its listener and signal handlers: end here.
process.exit(0)

/** YAML, as users write it: a static route and a file store, read by `token` and `check`. */
async function warmTools () {
  const config = join(dir, 'bearer-proxy.yaml')
  writeFileSync(config, `store:\n  type: file\n  dir: ${JSON.stringify(join(dir, 'state'))}\nroutes:\n  warm:\n    upstream: http://127.0.0.1:9\n    auth:\n      type: static\n      token: warm-up\n`)
  for (const invocation of [{ command: 'token', config, route: 'warm' }, { command: 'check', config, json: false }]) {
    const code = await exports.run(invocation, io)
    if (code !== 0) throw new Error(`code cache: ${invocation.command} exited ${code}: ${lines.join('\n')}`)
  }
}

/**
 * `serve` started, and one request through it to a loopback upstream. It
 * listens on a Unix socket of the temporary folder: no port to pick and race
 * another process for.
 */
async function warmServe () {
  const upstream = createServer((request, response) => response.end('ok'))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const socket = join(dir, 'serve.sock')
  const config = join(dir, 'bearer-proxy.yaml')
  writeFileSync(config, `listen:\n  path: ${JSON.stringify(socket)}\nadmin: false\nroutes:\n  warm:\n    upstream: http://127.0.0.1:${upstream.address().port}\n    auth:\n      type: static\n      token: warm-up\n`)
  exports.run({ command: 'serve', config, flags: { level: 'silent', pretty: false } }, io).then((code) => {
    throw new Error(`code cache: serve exited ${code}: ${lines.join('\n')}`)
  })
  const deadline = Date.now() + 30_000
  let status
  while ((status = await statusThrough(socket)) === undefined) {
    if (Date.now() > deadline) throw new Error('code cache: serve did not listen within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  if (status !== 200) throw new Error(`code cache: the request through serve got ${status}`)
  upstream.close()
}

/** The status of GET /warm/ through the proxy's socket; undefined while nothing listens there. */
function statusThrough (socketPath) {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/warm/', headers: { host: 'localhost' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    })
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** A token request as the tools make one: a form POST through an undici Agent. */
async function warmUndici () {
  const server = createServer((request, response) => {
    request.resume()
    request.on('end', () => response.setHeader('content-type', 'application/json').end('{"access_token":"warm-up","expires_in":60}'))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const agent = new exports.Agent({ keepAliveTimeout: 10_000 })
  const answer = await exports.request(`http://127.0.0.1:${server.address().port}/token`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials'
  })
  await answer.body.json()
  await agent.close()
  server.close()
}
