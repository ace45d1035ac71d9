/**
 * Child processes of the bench: spawning (each child tracked by its
 * ChildProcess handle), stopping, killing them all on exit / error / SIGINT,
 * and sampling a child's resident set size from /proc.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type AddressInfo } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()

function alive (child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

/** Kills every child still running, synchronously (safe in an 'exit' handler). */
export function killAll (): void {
  for (const child of children) {
    if (alive(child)) child.kill('SIGKILL')
  }
  children.clear()
  for (const dir of tempDirs) removeTempDir(dir)
  tempDirs.clear()
}

/** On exit, SIGINT, SIGTERM and uncaught errors: kill the children, remove temp files. */
export function installCleanup (): void {
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`)
      killAll()
      process.exit(130)
    })
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`)
    killAll()
    process.exit(1)
  })
}

/** Ends the process if it runs longer than `ms`: the bench always stops by itself. */
export function watchdog (ms: number): void {
  setTimeout(() => {
    process.stderr.write(`bench: still running after ${Math.round(ms / 1000)} s; aborting\n`)
    killAll()
    process.exit(1)
  }, ms).unref()
}

export function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'bearer-proxy-bench-'))
  tempDirs.add(dir)
  return dir
}

function removeTempDir (dir: string): void {
  // The node_modules link goes first, so nothing can ever follow it.
  try { unlinkSync(join(dir, 'node_modules')) } catch {}
  rmSync(dir, { recursive: true, force: true })
}

export interface Spawned {
  name: string
  child: ChildProcess
  pid: number
  /** The last few KiB of its stderr, for error messages. */
  stderr: () => string
}

function track (name: string, child: ChildProcess): Spawned {
  children.add(child)
  child.once('exit', () => children.delete(child))
  let tail = ''
  child.stderr?.setEncoding('utf8').on('data', (text: string) => { tail = (tail + text).slice(-4096) })
  if (child.pid === undefined) throw new Error(`${name}: could not start`)
  return { name, child, pid: child.pid, stderr: () => tail.trim() }
}

function exitMessage (spawned: Spawned, code: number | null, signal: string | null): string {
  const err = spawned.stderr()
  return `${spawned.name} exited (${signal ?? `code ${code}`}) before it was ready${err === '' ? '' : `:\n${err}`}`
}

/** Rejects with a readable message if the child exits first, or after `ms`. */
async function beforeExit<T> (spawned: Spawned, work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const exited = once(spawned.child, 'exit').then(([code, signal]) => { throw new Error(exitMessage(spawned, code as number | null, signal as string | null)) })
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${spawned.name} not ready within ${ms} ms\n${spawned.stderr()}`)), ms) })
  try {
    return await Promise.race([work, exited, late])
  } finally {
    clearTimeout(timer)
    exited.catch(() => {})
  }
}

/**
 * The bench's own servers are TypeScript; they run as plain JavaScript (no
 * loader in the measured process), transpiled into a temp dir that links to
 * the project's node_modules.
 */
export function prepareServers (names: readonly string[]): string {
  const dir = tempDir()
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  for (const name of names) {
    const source = readFileSync(new URL(`./servers/${name}.ts`, import.meta.url), 'utf8')
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: `${name}.ts`
    })
    writeFileSync(join(dir, `${name}.mjs`), outputText)
  }
  return dir
}

/** Which processes run where: the proxy under test alone on one core, everything else on the others. */
export type Role = 'proxy' | 'other'

export interface Pinning {
  proxy: string
  other: string
}

let pinning: Pinning | undefined
let proxyNodeFlags: readonly string[] = []

/**
 * Node flags placed before bearer-proxy's CLI in the servers the load
 * scenarios start (the baselines get none; the start-up scenario times the
 * commands as users run them, without flags). V8
 * flags make V8 refuse the bundles' code caches: start-up is slower, nothing
 * else.
 */
export function setProxyNodeFlags (flags: readonly string[]): void {
  proxyNodeFlags = flags
}

/**
 * With two or more cores and `taskset` (util-linux), every proxy variant is
 * pinned to core 0 and the bench process (load generator), its children and
 * the upstream to the other cores, so a variant's throughput is what one core
 * of it can do, not what it wins from the load generator. Returns the layout,
 * or undefined when the processes float.
 */
export function pinProcesses (): Pinning | undefined {
  const count = cpus().length
  if (count < 2 || spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status !== 0) return undefined
  const layout = { proxy: '0', other: count === 2 ? '1' : `1-${count - 1}` }
  // -a: every thread of this process (V8 and libuv start theirs early), and what it spawns inherits it.
  if (spawnSync('taskset', ['-a', '-cp', layout.other, String(process.pid)], { stdio: 'ignore' }).status !== 0) return undefined
  pinning = layout
  return layout
}

/**
 * `node ARGS…`, under taskset when the processes are pinned; `all` gives it
 * every core back (what it would have outside the bench: start-up runs V8's
 * compiler and collector threads beside the main one).
 */
function nodeCommand (role: Role | 'all', args: string[]): [string, string[]] {
  if (pinning === undefined) return [process.execPath, args]
  const cores = role === 'all' ? `0-${cpus().length - 1}` : pinning[role]
  return ['taskset', ['-c', cores, process.execPath, ...args]]
}

/** Starts `node SCRIPT ARGS…`, which prints one JSON line (its ports) on stdout when ready. */
export async function spawnJsonServer<T> (name: string, script: string, args: string[] = [], role: Role = 'other'): Promise<Spawned & { info: T }> {
  const [command, commandArgs] = nodeCommand(role, [script, ...args])
  const spawned = track(name, spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] }))
  const stdout = spawned.child.stdout as NodeJS.ReadableStream
  const firstLine = new Promise<string>((resolve) => {
    let text = ''
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8')
      const end = text.indexOf('\n')
      if (end === -1) return
      stdout.off('data', onData)
      stdout.resume() // keep draining whatever else it prints
      resolve(text.slice(0, end))
    }
    stdout.on('data', onData)
  })
  const line = await beforeExit(spawned, firstLine, 15_000)
  return { ...spawned, info: JSON.parse(line) as T }
}

/**
 * Starts bearer-proxy's built CLI on a port picked beforehand; its JSON logs
 * (level info, one line per request) go to /dev/null so nothing in the bench
 * has to read them. Ready when the port accepts connections.
 */
export async function spawnBearerProxy (configFile: string, port: number): Promise<Spawned> {
  const [command, args] = nodeCommand('proxy', [...proxyNodeFlags, join(ROOT, 'dist/cli.js'), 'serve', '-c', configFile])
  const spawned = track('bearer-proxy', spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe']
  }))
  await beforeExit(spawned, waitForPort(port), 15_000)
  return spawned
}

/**
 * A file for `node --require`: on exit the process writes its peak resident
 * set (VmHWM, bytes) to the file named by BENCH_PEAK_FILE. Read at exit, the
 * high-water mark covers the whole run.
 */
export function peakRecorder (): string {
  const file = join(tempDir(), 'peak.cjs')
  writeFileSync(file, [
    "'use strict'",
    "const { readFileSync, writeFileSync } = require('node:fs')",
    "process.on('exit', () => {",
    "  const match = /^VmHWM:\\s+(\\d+)\\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))",
    '  if (match !== null && process.env.BENCH_PEAK_FILE) writeFileSync(process.env.BENCH_PEAK_FILE, String(Number(match[1]) * 1024))',
    '})'
  ].join('\n'))
  return file
}

/**
 * `node ARGS…` to its end, on every core, with PATH alone in its environment;
 * its wall time from spawn to exit. Rejects on a non-zero exit or after
 * `timeoutMs`.
 */
export async function timeNode (name: string, args: string[], timeoutMs = 15_000, env: NodeJS.ProcessEnv = {}): Promise<{ ms: number, stdout: string }> {
  const [command, commandArgs] = nodeCommand('all', args)
  const started = performance.now()
  const spawned = track(name, spawn(command, commandArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ...env } }))
  let stdout = ''
  spawned.child.stdout?.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  const timer = setTimeout(() => spawned.child.kill('SIGKILL'), timeoutMs)
  const [code, signal] = await once(spawned.child, 'exit') as [number | null, string | null]
  const ms = performance.now() - started
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${name} failed (${signal ?? `exit ${code}`}):\n${spawned.stderr()}`)
  return { ms, stdout }
}

/**
 * Starts `node ARGS…` on every core and resolves once `port` accepts
 * connections, with the time from spawn to then: the start-up a supervisor
 * waits for.
 */
export async function spawnUntilPort (name: string, args: string[], port: number, timeoutMs = 15_000): Promise<Spawned & { readyMs: number }> {
  const [command, commandArgs] = nodeCommand('all', args)
  const started = performance.now()
  const spawned = track(name, spawn(command, commandArgs, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH } }))
  await beforeExit(spawned, waitForPort(port, 2), timeoutMs)
  return { ...spawned, readyMs: performance.now() - started }
}

/** Whether `redis-server` is on PATH. */
export function haveRedisServer (): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined
}

/**
 * A redis-server on 127.0.0.1 at a port that was free a moment ago (it
 * cannot take port 0), keeping nothing (no RDB, no AOF), with the load
 * generator's cores when pinned; tracked like every child, so `stop()` or the
 * exit handler ends it by its PID. Ready when the port accepts connections:
 * with nothing to load from disk it answers from then on.
 */
export async function spawnRedis (): Promise<Spawned & { url: string }> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning']
  const [command, commandArgs] = pinning === undefined ? ['redis-server', args] : ['taskset', ['-c', pinning.other, 'redis-server', ...args]]
  const spawned = track('redis-server', spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'] }))
  await beforeExit(spawned, waitForPort(port), 10_000)
  return { ...spawned, url: `redis://127.0.0.1:${port}/0` }
}

async function waitForPort (port: number, intervalMs = 50): Promise<void> {
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (connected) return
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** A loopback port that was free a moment ago. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stop (spawned: Spawned | undefined, graceMs = 3000): Promise<void> {
  if (spawned === undefined || !alive(spawned.child)) return
  const exited = once(spawned.child, 'exit')
  spawned.child.kill('SIGTERM')
  const timer = setTimeout(() => spawned.child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** Runs a command to completion (tracked like every child); rejects with its output on a non-zero exit. */
export async function run (name: string, command: string, args: string[]): Promise<string> {
  const spawned = track(name, spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }))
  let out = ''
  spawned.child.stdout?.setEncoding('utf8').on('data', (text: string) => { out += text })
  const [code] = await once(spawned.child, 'close') as [number | null]
  if (code !== 0) throw new Error(`${name} failed (exit ${code}):\n${out.trim()}\n${spawned.stderr()}`.trim())
  return out
}

let clockTicks: number | undefined

/**
 * CPU time a process has used so far, all its threads (GC and libuv helpers
 * included), in microseconds; undefined where /proc cannot tell.
 */
export function cpuMicros (pid: number): number | undefined {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100
    return (Number(fields[11]) + Number(fields[12])) * 1e6 / clockTicks
  } catch {
    return undefined
  }
}

/** VmRSS of a process, in bytes (0 once it is gone). */
export function rssBytes (pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? 0 : Number(match[1]) * 1024
  } catch {
    return 0
  }
}

/** Samples a process's RSS every 100 ms; `stop()` gives the peak in bytes. */
export class RssSampler {
  readonly #pid: number
  #peak: number
  readonly #timer: NodeJS.Timeout

  constructor (pid: number) {
    this.#pid = pid
    this.#peak = rssBytes(pid)
    this.#timer = setInterval(() => { this.#peak = Math.max(this.#peak, rssBytes(this.#pid)) }, 100)
  }

  stop (): number {
    clearInterval(this.#timer)
    this.#peak = Math.max(this.#peak, rssBytes(this.#pid))
    return this.#peak
  }
}
