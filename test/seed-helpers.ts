import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildApp, type ProxyApp } from '../src/app.js'
import { loadConfigFile } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import { createLogger } from '../src/logger.js'
import type { Emulator, RecordedRequest } from './fixtures/emulator.js'
import { LogSink } from './helpers.js'

/** The shipped example configs, one per seed API. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../config/examples/', import.meta.url))

export interface SeedProxy extends ProxyApp {
  url: string
  logs: LogSink
  config: Config
}

export interface SeedProxyOptions {
  /** Broker clock (a SkewClock's `now`), to skip backoffs and intervals without sleeping. */
  now?: () => number
  /** Token request timeout in ms for every route, for the `hang` cases (the shipped default is 10 s). */
  tokenTimeout?: number
}

/**
 * The proxy built from a shipped example file, loaded as it is with `env`
 * pointing at an emulator; only `listen` is moved to 127.0.0.1:0 (and, when
 * asked, the token timeout shortened). Logs go to a sink; closed after the test.
 */
export async function startSeedProxy (t: TestContext, example: string, env: Record<string, string>, options: SeedProxyOptions = {}): Promise<SeedProxy> {
  const config = loadConfigFile(`${EXAMPLES_DIR}${example}.yaml`, env)
  config.listen = { host: '127.0.0.1', port: 0 }
  // The admin port is not part of these tests and must not take 9901.
  config.admin = false
  const timeout = options.tokenTimeout
  if (timeout !== undefined) {
    config.routes = config.routes.map((route) => 'timeout' in route.auth ? { ...route, auth: { ...route.auth, timeout } } : route)
  }
  const logs = new LogSink()
  const proxy = await buildApp(config, { logger: createLogger({ level: 'debug', destination: logs }), ...(options.now === undefined ? {} : { now: options.now }) })
  await proxy.app.listen({ host: config.listen.host, port: config.listen.port })
  t.after(() => proxy.close())
  const port = (proxy.app.server.address() as AddressInfo).port
  return { ...proxy, url: `http://127.0.0.1:${port}`, logs, config }
}

/** Starts an emulator and closes it (hanging connections included) after the test. */
export async function startSeedEmulator<E extends Emulator> (t: TestContext, start: () => Promise<E>): Promise<E> {
  const emu = await start()
  t.after(() => emu.close())
  return emu
}

/** Real time plus a skew the test moves forward: backoffs are skipped, never slept through. */
export class SkewClock {
  skew = 0
  readonly now = (): number => Date.now() + this.skew

  skip (ms: number): void {
    this.skew += ms
  }
}

/** One request to the proxy, the body read and parsed when it is JSON (shared with the lifecycle tests). */
import { call, type ProxyAnswer as Answer } from './token-lifecycle-helpers.js'

export { call, type Answer }

/**
 * One request every `intervalMs` until `durationMs` has passed or `maxRequests`
 * were sent, without waiting for answers (steady traffic, not a closed loop).
 */
export async function steadyTraffic (url: string, options: { durationMs: number, intervalMs: number, maxRequests: number }): Promise<Answer[]> {
  const started = Date.now()
  const pending: Array<Promise<Answer>> = []
  while (pending.length < options.maxRequests && Date.now() - started < options.durationMs) {
    pending.push(call(url).catch((err: unknown) => ({ status: 0, headers: new Headers(), text: String(err), json: undefined })))
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs))
  }
  return Promise.all(pending)
}

/** `count` concurrent requests to `url`. */
export function burst (url: string, count: number): Promise<Answer[]> {
  return Promise.all(Array.from({ length: count }, () => call(url)))
}

/** Statuses of the answers that were not 2xx, with their bodies, for a readable failure. */
export function non2xx (answers: Answer[]): Array<{ status: number, text: string }> {
  return answers.filter((a) => a.status < 200 || a.status > 299).map((a) => ({ status: a.status, text: a.text.slice(0, 200) }))
}

/** Asserts that no secret occurs in any of the texts (error bodies, log lines). */
export function assertNoSecrets (texts: Record<string, string>, secrets: Record<string, string>): void {
  for (const [what, text] of Object.entries(texts)) {
    for (const [name, secret] of Object.entries(secrets)) {
      assert.ok(secret.length >= 4, `secret ${name} is long enough to search for`)
      assert.ok(!text.includes(secret), `${what} must not contain ${name}`)
    }
  }
}

/** The bearer token of a request as the emulator received it. */
export function bearerOf (request: RecordedRequest | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(request?.headers.authorization ?? '')?.[1]
}

/**
 * Cold start, token endpoint failing: a 503 TOKEN_UNAVAILABLE with a whole
 * number of seconds in Retry-After. Returns those seconds.
 */
export function assertUnavailable (answer: Answer, route: string): number {
  assert.equal(answer.status, 503, answer.text)
  assert.equal(answer.json?.error?.code, 'TOKEN_UNAVAILABLE')
  assert.equal(answer.json?.error?.route, route)
  const retryAfter = answer.headers.get('retry-after')
  assert.match(retryAfter ?? '', /^[1-9]\d*$/, 'Retry-After is a positive number of seconds')
  return Number(retryAfter)
}

/**
 * A JSON body with non-ASCII characters and odd spacing, so a replay that
 * re-serialised or re-encoded it would not give the same bytes.
 */
export const REPLAY_BODY = Buffer.from('{"counts": [1, 2,3],  "note":"caf\u00e9 \u2713", "n": 1.50}\n', 'utf8')

/**
 * After `revokeAll()`: the POST got a 2xx after one replay, and the upstream
 * received the identical body bytes twice, first with the revoked token and
 * then with a new one.
 */
export function assertReplayed (answer: Answer, emu: Emulator, upstreamPath: string, revoked: string): void {
  assert.ok(answer.status >= 200 && answer.status < 300, `2xx after the replay, got ${answer.status}: ${answer.text}`)
  const posts = emu.requests.filter((r) => r.method === 'POST' && r.path === upstreamPath)
  assert.equal(posts.length, 2, 'the upstream saw the request and its one replay')
  for (const post of posts) assert.ok(post.body.equals(REPLAY_BODY), 'the upstream received the identical body bytes')
  assert.equal(bearerOf(posts[0]), revoked, 'the first attempt used the revoked token')
  const replayToken = bearerOf(posts[1])
  assert.notEqual(replayToken, revoked, 'the replay used a new token')
  assert.ok(replayToken !== undefined && emu.check(replayToken, 'access').ok, 'the replay used a valid token')
}
