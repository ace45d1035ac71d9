import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { request, type IncomingHttpHeaders } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'
import { tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, tokenServer } from './helpers.js'
import { startTestServer } from './operability-helpers.js'

/**
 * `listen: { path }`: a Unix socket, so that only its owner (the file mode,
 * 0600 by default) can use the route's credentials; the same for the admin.
 */
interface SocketAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request over a Unix socket, as `curl --unix-socket PATH http://localhost/...` sends it. */
async function socketRequest (socketPath: string, path: string, options: { method?: string, headers?: Record<string, string> } = {}): Promise<SocketAnswer> {
  return await new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: options.method ?? 'GET', headers: { host: 'localhost', ...options.headers }, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.once('error', reject)
    })
    req.once('timeout', () => req.destroy(new Error('no answer over the socket')))
    req.once('error', reject)
    req.end()
  })
}

function modeOf (path: string): number {
  return lstatSync(path).mode & 0o777
}

/** The process umask, read without leaving it changed. */
function currentUmask (): number {
  const mask = process.umask(0o022)
  process.umask(mask)
  return mask
}

async function routes (t: TestContext) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  return { tokens, upstream, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
}

/** A socket file left behind by a process that was killed (SIGKILL) while listening. */
function staleSocket (path: string): void {
  const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`
  const run = spawnSync(process.execPath, ['-e', script], { timeout: 15_000 })
  assert.equal(run.signal, 'SIGKILL', `the helper process died listening: ${run.stderr.toString()}`)
  assert.ok(lstatSync(path).isSocket(), 'a stale socket file is left behind')
}

async function startFails (t: TestContext, input: Record<string, unknown>): Promise<Error & { code?: string }> {
  try {
    await startTestServer(t, input)
  } catch (err) {
    return err as Error & { code?: string }
  }
  assert.fail('the server started')
}

test('listen.path: the socket is created 0600, and a request over it gets the route\'s token', async (t) => {
  const { tokens, upstream, routes: r } = await routes(t)
  const path = join(tempDir(t), 'proxy.sock')
  const umask = currentUmask()
  const server = await startTestServer(t, { listen: { path }, routes: r })
  assert.ok(lstatSync(path).isSocket())
  assert.equal(modeOf(path).toString(8), '600')
  assert.equal(currentUmask(), umask, 'the process umask is restored')
  assert.equal(server.socket, path)
  assert.equal(server.url, 'http://localhost')
  const listening = server.logs.lines.find((l) => l.event === 'listening' && l.listener === 'proxy')
  assert.equal(listening?.socket, path, 'the listening line names the socket')

  const res = await socketRequest(path, '/api/things?x=1')
  assert.equal(res.status, 200, res.body)
  assert.equal(upstream.requests[0]?.url, '/things?x=1')
  assert.equal(upstream.requests[0]?.headers.authorization, 'Bearer token-1')
  assert.equal(tokens.calls.length, 1)
  // The guards still apply over a socket.
  const foreign = await socketRequest(path, '/api/things', { headers: { host: 'evil.example' } })
  assert.equal(foreign.status, 403)
})

test('listen.mode widens the socket as asked, and nothing more', async (t) => {
  const { routes: r } = await routes(t)
  const path = join(tempDir(t), 'group.sock')
  await startTestServer(t, { listen: { path, mode: '0660' }, routes: r })
  assert.equal(modeOf(path).toString(8), '660')
})

test('the socket file is removed on close', async (t) => {
  const { routes: r } = await routes(t)
  const path = join(tempDir(t), 'proxy.sock')
  const server = await startTestServer(t, { listen: { path }, admin: { path: `${path}.admin` }, routes: r })
  assert.ok(existsSync(path) && existsSync(`${path}.admin`))
  await server.stop()
  assert.ok(!existsSync(path), 'the proxy socket is gone')
  assert.ok(!existsSync(`${path}.admin`), 'the admin socket is gone')
})

test('a stale socket from a crashed run is replaced', async (t) => {
  const { routes: r } = await routes(t)
  const path = join(tempDir(t), 'proxy.sock')
  staleSocket(path)
  const server = await startTestServer(t, { listen: { path }, routes: r })
  assert.equal(modeOf(path).toString(8), '600')
  assert.equal((await socketRequest(path, '/api/x')).status, 200)
  assert.equal(server.socket, path)
})

test('a socket another process listens on is refused and left alone', async (t) => {
  const { routes: r } = await routes(t)
  const path = join(tempDir(t), 'proxy.sock')
  const other = createNetServer((socket) => { socket.on('error', () => {}); socket.end() })
  other.listen(path)
  await once(other, 'listening')
  t.after(() => new Promise<void>((resolve) => other.close(() => resolve())))
  const err = await startFails(t, { listen: { path }, routes: r })
  assert.equal(err.code, 'EADDRINUSE')
  assert.match(err.message, /^proxy socket .*proxy\.sock \(listen\.path\): another process is listening on it/)
  assert.ok(lstatSync(path).isSocket(), 'the other process keeps its socket')
})

test('a symbolic link at the path is neither followed nor replaced', async (t) => {
  const { routes: r } = await routes(t)
  const dir = tempDir(t)
  const target = join(dir, 'precious.txt')
  writeFileSync(target, 'keep me\n', { mode: 0o644 })
  for (const [name, to] of [['link.sock', target], ['dangling.sock', join(dir, 'nothing-here')]] as const) {
    const path = join(dir, name)
    symlinkSync(to, path)
    const err = await startFails(t, { listen: { path }, routes: r })
    assert.match(err.message, /\(listen\.path\): a symbolic link is there/, name)
    assert.equal(readlinkSync(path), to, `${name} is untouched`)
  }
  assert.equal(readFileSync(target, 'utf8'), 'keep me\n')
  assert.equal(modeOf(target).toString(8), '644', 'the link target\'s mode is untouched')
  assert.ok(!existsSync(join(dir, 'nothing-here')), 'nothing was created through the dangling link')
})

test('a regular file or a folder at the path is refused and kept', async (t) => {
  const { routes: r } = await routes(t)
  const dir = tempDir(t)
  const file = join(dir, 'file.sock')
  writeFileSync(file, 'data\n')
  const fileErr = await startFails(t, { listen: { path: file }, routes: r })
  assert.match(fileErr.message, /\(listen\.path\): a regular file is there/)
  assert.equal(readFileSync(file, 'utf8'), 'data\n')
  const folder = join(dir, 'folder.sock')
  mkdirSync(folder)
  const folderErr = await startFails(t, { admin: { path: folder }, routes: r })
  assert.match(folderErr.message, /^admin socket .* \(admin\.path\): a folder is there/)
})

test('the socket\'s folder must exist', async (t) => {
  const { routes: r } = await routes(t)
  const path = join(tempDir(t), 'missing', 'proxy.sock')
  const err = await startFails(t, { listen: { path }, routes: r })
  assert.match(err.message, /\(listen\.path\): its folder .*missing cannot be used \(ENOENT\)/)
  assert.ok(!existsSync(join(path, '..')))
})

test('admin: { path } serves the admin over a socket, 0600, with the admin\'s guards', async (t) => {
  const { tokens, routes: r } = await routes(t)
  const path = join(tempDir(t), 'admin.sock')
  const server = await startTestServer(t, { admin: { path }, routes: r })
  assert.equal(server.adminSocket, path)
  assert.equal(modeOf(path).toString(8), '600')
  assert.equal(server.logs.lines.find((l) => l.event === 'listening' && l.listener === 'admin')?.socket, path)
  const health = await socketRequest(path, '/healthz')
  assert.equal(health.status, 200)
  assert.deepEqual(JSON.parse(health.body), { status: 'ok' })
  assert.equal((await socketRequest(path, '/readyz')).status, 200)
  assert.equal(tokens.calls.length, 1)
  assert.equal((await socketRequest(path, '/routes', { headers: { host: 'evil.example' } })).status, 403)
  assert.equal((await socketRequest(path, '/readyz', { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403)
})

test('config: path excludes host and port, must be absolute; mode is a quoted octal string for a socket only', () => {
  const route = { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 'config-test-key' } }
  const issuesOf = (input: Record<string, unknown>): string[] => {
    try {
      parseConfig({ ...input, routes: { x: route } }, { env: {} })
    } catch (err) {
      if (err instanceof ConfigError) return err.issues
      throw err
    }
    return []
  }
  assert.deepEqual(issuesOf({ listen: { path: '/run/p.sock', port: 8080 } }), ['listen.port: cannot be combined with path (a Unix socket has no host or port)'])
  assert.deepEqual(issuesOf({ admin: { path: '/run/a.sock', host: '127.0.0.1' } }), ['admin.host: cannot be combined with path (a Unix socket has no host or port)'])
  assert.deepEqual(issuesOf({ listen: { path: 'run/p.sock' } }), ['listen.path: must be an absolute path'])
  assert.match(issuesOf({ listen: { path: `/run/${'x'.repeat(120)}.sock` } })[0] as string, /^listen\.path: must be at most 10\d bytes long/)
  assert.deepEqual(issuesOf({ listen: { host: '127.0.0.1', mode: '0600' } }), ['listen.mode: applies only to a Unix socket (path)'])
  for (const mode of [660, 432, '0999', '1777', 'rw-------', '']) {
    const issues = issuesOf({ listen: { path: '/run/p.sock', mode } })
    assert.equal(issues.length, 1, String(mode))
    assert.match(issues[0] as string, /^listen\.mode: must be an octal mode as a quoted string, e\.g\. "0660"/, String(mode))
  }
  const parsed = parseConfig({ listen: { path: '/run/p.sock', mode: '660' }, admin: { path: '/run/a.sock' }, routes: { x: route } }, { env: {} })
  assert.deepEqual(parsed.listen, { path: '/run/p.sock', mode: 0o660 })
  assert.deepEqual(parsed.admin, { path: '/run/a.sock', mode: 0o600 })
})
