import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Backoff, BACKOFF_MAX_MS, backoffDelay, MIN_FETCH_INTERVAL_MS, RETRY_AFTER_MAX_MS } from '../src/auth/backoff.js'

const T0 = 1_700_000_000_000
const fixed = (value: number) => (): number => value
/** The largest value Math.random may return. */
const ALMOST_ONE = 1 - Number.EPSILON

test('failures in a row back off exponentially from one second, doubling up to a minute', () => {
  // [failures in a row, the full step (ms)]: with random 0 the wait is half the step, towards 1 the whole step.
  const steps: Array<[number, number]> = [[1, 1000], [2, 2000], [3, 4000], [4, 8000], [5, 16_000], [6, 32_000], [7, 60_000], [8, 60_000], [20, 60_000], [1000, 60_000]]
  for (const [failures, step] of steps) {
    assert.equal(backoffDelay(failures, fixed(0)), step / 2, `failure ${failures}, least jitter`)
    assert.equal(backoffDelay(failures, fixed(0.5)), step * 3 / 4, `failure ${failures}, middle jitter`)
    const most = backoffDelay(failures, fixed(ALMOST_ONE))
    assert.ok(most < step && most > step - 1, `failure ${failures}, most jitter: ${most} ms`)
    assert.ok(most <= BACKOFF_MAX_MS, `failure ${failures}: never past the cap`)
  }
})

test('the jitter keeps every wait in [half the step, the step): retries neither sync up nor come too fast', () => {
  const randoms = [0, 1e-9, 0.1, 0.25, 0.5, 0.75, 0.9, ALMOST_ONE]
  for (let failures = 1; failures <= 10; failures++) {
    const step = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** (failures - 1))
    const waits = randoms.map((r) => backoffDelay(failures, fixed(r)))
    for (const wait of waits) assert.ok(wait >= step / 2 && wait < step, `failure ${failures}: ${wait} ms in [${step / 2}, ${step})`)
    assert.deepEqual([...waits].sort((a, b) => a - b), waits, `failure ${failures}: a larger random waits longer`)
  }
})

test('Retry-After is honoured when longer than the backoff, up to an hour; a shorter one does not shorten the backoff', () => {
  // [failures, random, Retry-After ms, wait ms]
  const rows: Array<[number, number, number | undefined, number]> = [
    [1, 0, undefined, 500],
    [1, 0, 0, 500],
    [1, 0, 200, 500],
    [1, 0, 7000, 7000],
    [3, 0.5, 2000, 3000],
    [3, 0.5, 120_000, 120_000],
    [10, 0, 60_000, 60_000],
    [1, 0, RETRY_AFTER_MAX_MS, RETRY_AFTER_MAX_MS],
    [1, 0, 24 * RETRY_AFTER_MAX_MS, RETRY_AFTER_MAX_MS]
  ]
  for (const [failures, random, retryAfterMs, wait] of rows) {
    assert.equal(backoffDelay(failures, fixed(random), retryAfterMs), wait, `failure ${failures}, random ${random}, Retry-After ${retryAfterMs} ms`)
  }
})

test('a route backs off from each failure until a token comes; a token (or forgetting it) starts the sequence over', () => {
  const randoms = [0.5, 0, 0.25]
  const backoff = new Backoff({ random: () => randoms.shift() ?? 0 })
  assert.equal(backoff.retryAt, 0, 'no backoff before a failure')
  assert.equal(backoff.failed(T0, undefined), T0 + 750)
  assert.equal(backoff.retryAt, T0 + 750)
  assert.equal(backoff.failed(T0 + 1000, undefined), T0 + 1000 + 1000)
  assert.equal(backoff.failed(T0 + 5000, 30_000), T0 + 5000 + 30_000, 'Retry-After past the third step')
  backoff.reset()
  assert.equal(backoff.retryAt, 0, 'a token ends the backoff')
  assert.equal(backoff.failed(T0 + 60_000, undefined), T0 + 60_000 + 500, 'after a token the first failure is the first step again')
})

test('token requests of one route are at least the minimum interval apart', () => {
  const backoff = new Backoff({ random: fixed(0) })
  assert.equal(backoff.minIntervalMs, MIN_FETCH_INTERVAL_MS)
  assert.equal(backoff.tooSoon(T0), false, 'the first request goes at once')
  assert.ok(backoff.wait(T0) <= 0)
  backoff.sent(T0)
  // [ms after the last request, too soon, wait ms]
  const rows: Array<[number, boolean, number]> = [[0, true, 1000], [1, true, 999], [400, true, 600], [999, true, 1], [1000, false, 0], [5000, false, -4000]]
  for (const [after, tooSoon, wait] of rows) {
    assert.equal(backoff.tooSoon(T0 + after), tooSoon, `${after} ms after: too soon`)
    assert.equal(backoff.wait(T0 + after), wait, `${after} ms after: wait`)
  }
  assert.equal(backoff.nextRequestAt, T0 + MIN_FETCH_INTERVAL_MS)
  // A clock that went back never makes a request wait longer than one interval.
  assert.equal(backoff.wait(T0 - 3600_000), MIN_FETCH_INTERVAL_MS)
  const slower = new Backoff({ minIntervalMs: 5000 })
  slower.sent(T0)
  assert.equal(slower.tooSoon(T0 + 4999), true)
  assert.equal(slower.tooSoon(T0 + 5000), false)
  slower.failed(T0 + 1, undefined)
  assert.equal(slower.nextRequestAt, T0 + 5000, 'a failure does not move the minimum interval')
})
