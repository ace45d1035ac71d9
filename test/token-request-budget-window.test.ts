import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RequestBudget, RequestBudgets } from '../src/auth/request-budget.js'

const T0 = 1_700_000_000_000

test('a token endpoint gets at most its budget of requests in any sliding minute; a refused one learns when a slot frees', () => {
  const budget = new RequestBudget(3)
  // [ms after T0, ms until a slot frees (undefined: the request may go)]
  const requests: Array<[number, number | undefined]> = [
    [0, undefined],
    [20_000, undefined],
    [40_000, undefined],
    [40_001, 19_999],
    [59_999, 1],
    // The first request is a minute old: its slot is free again.
    [60_000, undefined],
    [60_001, 19_999],
    [80_000, undefined],
    [80_000, 20_000],
    // A refused request takes no slot: the next frees when the one from 40 s does.
    [99_999, 1],
    [100_000, undefined]
  ]
  for (const [at, wait] of requests) assert.equal(budget.take(T0 + at), wait, `request ${at} ms in`)
})

test('a budget of one lets one request a minute', () => {
  const budget = new RequestBudget(1)
  assert.equal(budget.take(T0), undefined)
  assert.equal(budget.take(T0 + 1), 59_999)
  assert.equal(budget.take(T0 + 60_000), undefined)
})

test('a request may be spared for a refusal only while it leaves half the budget, rounded down', () => {
  // [limit, how many requests leave it spare (sent ≤ this)]
  const rows: Array<[number, number]> = [[1, 0], [2, 0], [3, 1], [4, 1], [5, 2], [10, 4], [30, 14], [31, 15]]
  for (const [limit, spareUpTo] of rows) {
    const budget = new RequestBudget(limit)
    for (let sent = 0; sent <= limit; sent++) {
      assert.equal(budget.spare(T0 + sent), sent <= spareUpTo, `limit ${limit}, ${sent} sent`)
      budget.take(T0 + sent)
    }
    // A minute after the last request the budget is whole again.
    assert.equal(budget.spare(T0 + limit + 60_000), true, `limit ${limit}: whole again a minute later`)
  }
})

test('asking whether a request can be spared takes no slot', () => {
  const budget = new RequestBudget(2)
  for (let i = 0; i < 10; i++) budget.spare(T0)
  assert.equal(budget.take(T0), undefined)
  assert.equal(budget.take(T0), undefined)
  assert.equal(budget.take(T0), 60_000)
})

test('routes on one token endpoint share one budget; each endpoint has its own', () => {
  const budgets = new RequestBudgets(2)
  assert.equal(budgets.limit, 2)
  const a = budgets.for('https://idp.example/token')
  assert.equal(budgets.for('https://idp.example/token'), a, 'the same endpoint, the same budget')
  const b = budgets.for('https://other.example/token')
  assert.notEqual(b, a)
  assert.equal(a.take(T0), undefined)
  assert.equal(budgets.for('https://idp.example/token').take(T0), undefined)
  assert.equal(a.take(T0), 60_000, 'spent by the two routes together')
  assert.equal(b.take(T0), undefined, 'another endpoint is not touched')
})
