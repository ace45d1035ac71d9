import { freePort, type ReceivedRequest, type TestProxy } from './helpers.js'

/**
 * A wall clock that only moves when the test says so, handed to the brokers
 * as `now`. Starts on a whole second so JWT `exp` claims map to exact ms.
 */
export class ManualClock {
  ms: number

  constructor (start = Math.floor(Date.now() / 1000) * 1000) {
    this.ms = start
  }

  readonly now = (): number => this.ms

  advance (ms: number): void {
    this.ms += ms
  }

  /** Seconds since the epoch, for JWT claims. */
  get seconds (): number {
    return Math.floor(this.ms / 1000)
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
