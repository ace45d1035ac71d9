import type { Scheduler } from '../src/auth/broker.js'
import { freePort, type ReceivedRequest, type TestProxy } from './helpers.js'

/**
 * A wall clock that only moves when the test says so, handed to the brokers
 * as `now`, and their timers (`timers: clock`): a timer runs when the clock
 * is moved past its time (timers due at once run on the next turn of the
 * event loop). Starts on a whole second so JWT `exp` claims map to exact ms.
 */
export class ManualClock implements Scheduler {
  #ms: number
  #timers: Array<{ due: number, task: () => void, cancelled: boolean }> = []

  constructor (start = Math.floor(Date.now() / 1000) * 1000) {
    this.#ms = start
  }

  get ms (): number {
    return this.#ms
  }

  set ms (value: number) {
    this.#ms = value
    this.#run()
  }

  readonly now = (): number => this.#ms

  advance (ms: number): void {
    this.ms = this.#ms + ms
  }

  /** Seconds since the epoch, for JWT claims. */
  get seconds (): number {
    return Math.floor(this.#ms / 1000)
  }

  schedule (task: () => void, ms: number): () => void {
    const timer = { due: this.#ms + Math.max(0, ms), task, cancelled: false }
    this.#timers.push(timer)
    if (ms <= 0) setImmediate(() => this.#run())
    return () => {
      timer.cancelled = true
      this.#timers = this.#timers.filter((t) => t !== timer)
    }
  }

  /** Timers pending, for tests that check none is left behind. */
  get pending (): number {
    return this.#timers.length
  }

  /** Runs the timers due by now, earliest first; ones they set run on a later move. */
  #run (): void {
    const due = this.#timers.filter((t) => t.due <= this.#ms).sort((a, b) => a.due - b.due)
    this.#timers = this.#timers.filter((t) => t.due > this.#ms)
    for (const timer of due) if (!timer.cancelled) timer.task()
  }
}

export interface ProxyAnswer {
  status: number
  headers: Headers
  text: string
  json: any
}

/** Longest wait for one answer, so a proxy that hangs fails the test instead of stalling it. */
const CALL_TIMEOUT_MS = 10_000

/** One request to the proxy, body read and parsed when it is JSON. */
export async function call (url: string, init: RequestInit = {}): Promise<ProxyAnswer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS), ...init })
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

/** Polls `condition` every few ms; fails after `timeoutMs` so no test hangs. */
export async function waitFor (condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Counts requests the proxy has started handling (its node:http 'request' events). */
export function countArrivals (proxy: TestProxy): { readonly count: number } {
  const counter = { count: 0 }
  proxy.app.server.on('request', () => { counter.count++ })
  return counter
}

/** A deferred: a promise plus the function that settles it. */
export function gate (): { promise: Promise<void>, open: () => void } {
  let open: () => void = () => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** The bearer token an upstream request carried. */
export function tokenOf (req: ReceivedRequest | undefined): string | undefined {
  const auth = req?.headers.authorization
  return typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : auth
}

/** A loopback URL nothing listens on. */
export async function closedPortUrl (): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/oauth/token`
}
