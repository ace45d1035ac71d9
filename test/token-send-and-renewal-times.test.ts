import assert from 'node:assert/strict'
import { test } from 'node:test'
import { neverUsable, renewAt, usableUntil } from '../src/auth/renewal-policy.js'

const SECOND = 1000
const T0 = 1_700_000_000_000

/**
 * One token, one clock: whether the token may be sent then (before `usableUntil`),
 * whether its renewal is due then (from `renewAt`), and whether it is usable at
 * all by the margins. Lifetimes and clocks are seconds after the token was obtained.
 */
interface Row {
  what: string
  lifetime: number
  minValidity: number
  refreshAhead: number
  at: number
  sendable: boolean
  due: boolean
  never: boolean
}

const ROWS: Row[] = [
  { what: 'an hour-long token just obtained', lifetime: 3600, minValidity: 30, refreshAhead: 0.8, at: 0, sendable: true, due: false, never: false },
  { what: 'an hour-long token a second before its renewal point', lifetime: 3600, minValidity: 30, refreshAhead: 0.8, at: 2879, sendable: true, due: false, never: false },
  { what: 'an hour-long token at its renewal point', lifetime: 3600, minValidity: 30, refreshAhead: 0.8, at: 2880, sendable: true, due: true, never: false },
  { what: 'an hour-long token a second before its margin', lifetime: 3600, minValidity: 30, refreshAhead: 0.8, at: 3569, sendable: true, due: true, never: false },
  { what: 'an hour-long token at its margin: not sent, though not expired', lifetime: 3600, minValidity: 30, refreshAhead: 0.8, at: 3570, sendable: false, due: true, never: false },
  { what: 'an hour-long token past its expiry', lifetime: 3600, minValidity: 30, refreshAhead: 0.8, at: 3601, sendable: false, due: true, never: false },
  // refreshAhead's point (80 s) is past the margin (70 s): renewal from 80 % of the usable 70 s.
  { what: 'a 100 s token before its early renewal point', lifetime: 100, minValidity: 30, refreshAhead: 0.8, at: 55, sendable: true, due: false, never: false },
  { what: 'a 100 s token at its early renewal point', lifetime: 100, minValidity: 30, refreshAhead: 0.8, at: 56, sendable: true, due: true, never: false },
  { what: 'a 100 s token at its margin', lifetime: 100, minValidity: 30, refreshAhead: 0.8, at: 70, sendable: false, due: true, never: false },
  { what: 'a token one second longer than the margin, just obtained', lifetime: 31, minValidity: 30, refreshAhead: 0.5, at: 0, sendable: true, due: false, never: false },
  { what: 'a token one second longer than the margin, at half its usable second', lifetime: 31, minValidity: 30, refreshAhead: 0.5, at: 0.5, sendable: true, due: true, never: false },
  { what: 'a token one second longer than the margin, after that second', lifetime: 31, minValidity: 30, refreshAhead: 0.5, at: 1, sendable: false, due: true, never: false },
  // Shorter than minValidity: never usable by the margins, its renewal due at once.
  { what: 'a token exactly as long as the margin', lifetime: 30, minValidity: 30, refreshAhead: 0.8, at: 0, sendable: false, due: true, never: true },
  { what: 'a 10 s token under a 30 s margin, just obtained', lifetime: 10, minValidity: 30, refreshAhead: 0.8, at: 0, sendable: false, due: true, never: true },
  { what: 'a 10 s token under a 30 s margin, not yet expired', lifetime: 10, minValidity: 30, refreshAhead: 0.8, at: 5, sendable: false, due: true, never: true },
  { what: 'a token that expired as it came', lifetime: 0, minValidity: 30, refreshAhead: 0.8, at: 0, sendable: false, due: true, never: true },
  { what: 'a 10 s token without margin, before expiry', lifetime: 10, minValidity: 0, refreshAhead: 0.5, at: 9.999, sendable: true, due: true, never: false },
  { what: 'a 10 s token without margin, at expiry', lifetime: 10, minValidity: 0, refreshAhead: 0.5, at: 10, sendable: false, due: true, never: false },
  // A credential that never expires (a static key): always sent, never renewed, whatever the margins.
  { what: 'a key that never expires, at once', lifetime: Infinity, minValidity: 30, refreshAhead: 0.8, at: 0, sendable: true, due: false, never: false },
  { what: 'a key that never expires, a year on', lifetime: Infinity, minValidity: 30, refreshAhead: 0.8, at: 365 * 24 * 3600, sendable: true, due: false, never: false },
  { what: 'a key that never expires, with a margin of a day', lifetime: Infinity, minValidity: 86_400, refreshAhead: 0.99, at: 10 * 365 * 24 * 3600, sendable: true, due: false, never: false }
]

test('a token is sent only before its minValidity margin, renewed from its renewal point, and never usable when it lives no longer than the margin', () => {
  for (const row of ROWS) {
    const token = { obtainedAt: T0, expiresAt: T0 + row.lifetime * SECOND }
    const margins = { minValidity: row.minValidity, refreshAhead: row.refreshAhead }
    const now = T0 + row.at * SECOND
    assert.equal(now < usableUntil(token, margins), row.sendable, `sendable: ${row.what}`)
    assert.equal(now >= renewAt(token, margins), row.due, `renewal due: ${row.what}`)
    assert.equal(neverUsable(token, margins), row.never, `never usable: ${row.what}`)
  }
})

test('a key that never expires stays usable and is never due, whatever the margins', () => {
  const forever = { obtainedAt: T0, expiresAt: Infinity }
  for (const minValidity of [0, 30, 86_400]) {
    for (const refreshAhead of [0.01, 0.8, 0.99]) {
      const margins = { minValidity, refreshAhead }
      assert.equal(usableUntil(forever, margins), Infinity)
      assert.equal(renewAt(forever, margins), Infinity)
      assert.equal(neverUsable(forever, margins), false)
    }
  }
})
