import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { freePort } from './helpers.js'

/** How long a redis-server gets to start answering. */
const START_TIMEOUT_MS = 10_000

export interface TestRedis {
  port: number
  /** `redis://127.0.0.1:PORT/0`, with the password when there is one */
  url: string
  /** The running server's PID (undefined while stopped). */
  readonly pid: number | undefined
  /** A plain client of the test's own, to read what the proxy wrote; closed after the test. */
  raw: Redis
  /** Kills the server (SIGKILL): it keeps nothing (no RDB, no AOF), as a crashed Redis without persistence. */
  stop (): Promise<void>
  /** Starts it again on the same port, empty. */
  start (): Promise<void>
  /** SIGSTOP: the server keeps its connections but answers nothing, as a hung Redis. */
  pause (): void
  /** SIGCONT */
  resume (): void
}

/**
 * A real redis-server on 127.0.0.1 at a port that was free a moment ago
 * (redis-server cannot take port 0), without persistence, stopped by its PID
 * after the test. `.ci/run` installs redis-server where it is missing.
 */
export async function startRedis (t: TestContext, options: { password?: string } = {}): Promise<TestRedis> {
  if (spawnSync('redis-server', ['--version']).error !== undefined) throw new Error('redis-server is not installed (apt-get install redis-server); .ci/run installs it')
  const port = await freePort()
  const password = options.password
  const auth = password === undefined ? {} : { password }
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning']
    if (password !== undefined) args.push('--requirepass', password)
    const server = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = server
    let output = ''
    server.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    server.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (server.exitCode !== null) throw new Error(`redis-server exited with ${server.exitCode}: ${output}`)
      const probe = new Redis({ ...auth, port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 500 })
      probe.on('error', () => {})
      const ok = await probe.connect().then(() => probe.ping(), () => undefined).catch(() => undefined)
      probe.disconnect()
      if (ok === 'PONG') return
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${START_TIMEOUT_MS} ms: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async function stop (): Promise<void> {
    const server = child
    child = undefined
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return
    const exited = once(server, 'exit')
    // SIGKILL ends a paused (SIGSTOPped) server too.
    server.kill('SIGKILL')
    await exited
  }

  await start()
  t.after(stop)
  const raw = new Redis({ ...auth, port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(times * 50, 500) })
  raw.on('error', () => {})
  t.after(() => { raw.disconnect() })
  return {
    port,
    url: `redis://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}127.0.0.1:${port}/0`,
    get pid () { return child?.pid },
    raw,
    stop,
    start,
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
}

/** Every key in the test server's database 0 (a test server holds few). */
export async function allKeys (raw: Redis): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  for (let i = 0; i < 1000; i++) {
    const [next, batch] = await raw.scan(cursor, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
    if (cursor === '0') break
  }
  return keys.sort()
}
