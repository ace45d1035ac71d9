import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import type { ConfigInput } from '../src/config/schema.js'
import { createLogger } from '../src/logger.js'
import { startServer, type RunningServer } from '../src/server.js'
import { CLI, ROOT } from './cli-helpers.js'
import { LogSink, sendJson, tokenServer } from './helpers.js'

/** The CLI loads the whole app; on a busy machine that can take a few seconds. */
const STARTUP_LIMIT_MS = 15_000

export interface TestServerProcess extends RunningServer {
  logs: LogSink
  /** Closes once; later calls (t.after included) are no-ops. */
  stop (): Promise<void>
}

/**
 * startServer (proxy port + admin port, as `serve` runs them) on loopback
 * port 0, from a config object validated like a file, logs captured.
 */
export async function startTestServer (t: TestContext, input: ConfigInput | Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<TestServerProcess> {
  const config = parseConfig({ listen: { host: '127.0.0.1', port: 0 }, admin: false, ...input }, { env })
  const logs = new LogSink()
  const server = await startServer(config, createLogger({ level: 'debug', destination: logs }))
  let closing: Promise<void> | undefined
  const stop = (): Promise<void> => { closing ??= server.close(); return closing }
  t.after(stop)
  return { ...server, logs, stop }
}

export { freePort } from './helpers.js'

export interface ServeProcess {
  child: ChildProcessByStdio<null, Readable, Readable>
  /** Parsed JSON log lines seen on stdout so far. */
  lines: Array<Record<string, unknown>>
  stderr: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Resolves with the first log line (seen so far or later) that `match` accepts; bounded in time. */
  waitForLog: (match: (line: Record<string, unknown>) => boolean, what: string, timeoutMs?: number) => Promise<Record<string, unknown>>
}

/**
 * `node dist/cli.js serve -c FILE` as a child process, killed after the test
 * by its handle; resolves once the proxy logs that it listens. `env` is added
 * to its environment.
 */
export async function spawnServe (t: TestContext, configFile: string, cwd: string = ROOT, cli: string = CLI, env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first`)
  const child = spawn(process.execPath, [cli, 'serve', '-c', configFile], {
    cwd,
    // PATH only: nothing from the developer's shell (BEARER_PROXY_CONFIG, secrets).
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const lines: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  let partial = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk
    const complete = partial.split('\n')
    partial = complete.pop() as string
    for (const line of complete) {
      if (line.trim() === '') continue
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        lines.push({ unparsed: line })
      }
    }
    for (const wake of waiters) wake()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })

  function waitForLog (match: (line: Record<string, unknown>) => boolean, what: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.find(match)
        if (found === undefined) return
        done()
        resolve(found)
      }
      const timer = setTimeout(() => { done(); reject(new Error(`no log line for ${what} within ${timeoutMs} ms; stderr: ${stderr}`)) }, timeoutMs)
      const onExit = (): void => { done(); reject(new Error(`serve exited before ${what}; stderr: ${stderr}`)) }
      function done (): void {
        clearTimeout(timer)
        waiters.delete(check)
        child.off('exit', onExit)
      }
      waiters.add(check)
      child.once('exit', onExit)
      check()
    })
  }

  await waitForLog((l) => l.event === 'listening', 'the proxy to listen', STARTUP_LIMIT_MS)
  return { child, lines, stderr: () => stderr, exited, waitForLog }
}

/** Writes a config file as JSON (YAML 1.2 reads it). */
export function writeConfig (file: string, config: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(config, null, 2))
}

/** A value that cannot turn up by accident. */
export function canary (label: string): string {
  return `CANARY-${label}-${randomBytes(9).toString('hex')}`
}

/** A token server that issues a fresh canary access token and refresh token on every call, and remembers them. */
export async function issuingTokenServer (t: TestContext): Promise<Awaited<ReturnType<typeof tokenServer>> & { issued: string[], refreshTokens: string[] }> {
  const issued: string[] = []
  const refreshTokens: string[] = []
  const server = await tokenServer(t, (_call, _n, res) => {
    const access = canary('access')
    const refresh = canary('refresh')
    issued.push(access)
    refreshTokens.push(refresh)
    sendJson(res, 200, { access_token: access, token_type: 'Bearer', expires_in: 3600, refresh_token: refresh })
  })
  return Object.assign(server, { issued, refreshTokens })
}
