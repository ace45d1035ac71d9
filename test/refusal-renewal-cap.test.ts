import assert from 'node:assert/strict'
import { test } from 'node:test'
import { REFUSAL_RENEWALS_PER_MINUTE, RefusalCap } from '../src/auth/refusal-cap.js'
import { RequestBudget } from '../src/auth/request-budget.js'

const T0 = 1_700_000_000_000

test('upstream refusals renew a route\'s token at most three times in any sliding minute', () => {
  assert.equal(REFUSAL_RENEWALS_PER_MINUTE, 3)
  const cap = new RefusalCap()
  // [ms after T0, renewal allowed]
  const refusals: Array<[number, boolean]> = [
    [0, true],
    [10_000, true],
    [20_000, true],
    [20_001, false],
    [59_999, false],
    // The first renewal is a minute old: its slot is free again, the two later ones are not.
    [60_000, true],
    [60_001, false],
    [69_999, false],
    [70_000, true],
    [80_000, true],
    [80_001, false],
    // A quiet minute frees all three.
    [200_000, true],
    [200_000, true],
    [200_000, true],
    [200_000, false]
  ]
  for (const [at, allowed] of refusals) assert.equal(cap.take(T0 + at), allowed, `refusal ${at} ms in`)
})

test('a refusal the cap passes on uses no slot: it does not push later renewals out', () => {
  const cap = new RefusalCap()
  for (const at of [0, 1, 2]) assert.equal(cap.take(T0 + at), true)
  for (let at = 3; at < 60_000; at += 997) assert.equal(cap.take(T0 + at), false)
  assert.equal(cap.take(T0 + 60_000), true, 'the first slot frees a minute after it was taken, whatever was refused meanwhile')
})

test('refusals never take the last half of the token endpoint\'s budget, which every route on it needs for renewals', () => {
  // [budget per minute, token requests already sent, whether a refusal may renew]
  const rows: Array<[number, number, boolean]> = [
    [1, 0, true],
    [1, 1, false],
    [2, 0, true],
    [2, 1, false],
    [4, 0, true],
    [4, 1, true],
    [4, 2, false],
    [5, 2, true],
    [5, 3, false],
    [30, 14, true],
    [30, 15, false]
  ]
  for (const [limit, sent, allowed] of rows) {
    const budget = new RequestBudget(limit)
    for (let i = 0; i < sent; i++) assert.equal(budget.take(T0), undefined)
    const cap = new RefusalCap(budget)
    assert.equal(cap.take(T0), allowed, `budget ${limit}/min with ${sent} sent`)
  }
})

test('a refusal the budget stops is not counted against the route\'s three', () => {
  let spare = false
  const cap = new RefusalCap({ spare: () => spare })
  assert.equal(cap.take(T0), false)
  assert.equal(cap.take(T0 + 1), false)
  spare = true
  for (const at of [2, 3, 4]) assert.equal(cap.take(T0 + at), true, `${at} ms in: the stopped ones took no slot`)
  assert.equal(cap.take(T0 + 5), false)
})
