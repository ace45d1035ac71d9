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
