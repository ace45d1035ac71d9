import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { TokenStore } from '../src/auth/token-store.js'

/**
 * Sixteen contenders, alternating between two stores (two processes' worth),
 * each holding the route's lock for a moment: asserts all got it and never
 * two at once.
 */
export async function assertOneHolderAtATime (a: TokenStore, b: TokenStore, route = 'api'): Promise<void> {
  let inside = 0
  let most = 0
  let entered = 0
  await Promise.all(Array.from({ length: 16 }, async (_, i) => {
    const lock = await (i % 2 === 0 ? a : b).lock(route, { leaseMs: 60_000, waitMs: 20_000 })
    assert.ok(lock !== undefined, `contender ${i} got the lock`)
    inside++
    entered++
    most = Math.max(most, inside)
    await sleep(5)
    inside--
    await lock.release()
  }))
  assert.equal(entered, 16)
  assert.equal(most, 1, 'never two holders at once')
}

/**
 * While `a` holds the route's lock, `b` gives up after its waitMs (and not a
 * lease later); once `a` lets go during a longer wait, `b` takes it then.
 */
export async function assertBoundedWait (a: TokenStore, b: TokenStore, route = 'api'): Promise<void> {
  const held = await a.lock(route, { leaseMs: 60_000, waitMs: 1000 })
  assert.ok(held !== undefined)
  const started = Date.now()
  assert.equal(await b.lock(route, { leaseMs: 60_000, waitMs: 400 }), undefined)
  const waited = Date.now() - started
  assert.ok(waited >= 390, `waited ${waited} ms`)
  // Generous: the machine may be busy, but not a lease (60 s) long.
  assert.ok(waited < 5000, `waited ${waited} ms`)

  // Released while b waits: b gets it then, without waiting out waitMs.
  setTimeout(() => { held.release().catch(() => {}) }, 200)
  const before = Date.now()
  const next = await b.lock(route, { leaseMs: 60_000, waitMs: 20_000 })
  assert.ok(next !== undefined)
  assert.ok(Date.now() - before < 5000, `took ${Date.now() - before} ms after the release`)
  await next.release()
}
