import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { FileTokenStore } from '../src/auth/file-token-store.js'
import { tempDir } from './cli-helpers.js'

const LOCK = 'api.token.lock'
/** A lease no test outlives. */
const LONG = { leaseMs: 60_000, waitMs: 0 }

/** Two stores on one dir stand for two processes: they share nothing but the files. */
function stores (dir: string): [FileTokenStore, FileTokenStore] {
  const make = (): FileTokenStore => new FileTokenStore({ dir, settings: new Map([['api', { type: 'static' }]]), logger: pino({ level: 'silent' }) })
  return [make(), make()]
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('the lock file is exclusive: while one store holds it, another cannot take it; after the release it can', async (t) => {
  const dir = tempDir(t)
  const [a, b] = stores(dir)
  const held = await a.lock('api', LONG)
  assert.ok(held !== undefined)
  assert.equal(statSync(join(dir, LOCK)).mode & 0o777, 0o600)
  assert.equal(await b.lock('api', LONG), undefined)
  assert.equal(await a.lock('api', LONG), undefined, 'not reentrant: a second renewal in the same process waits too')
  // Another route's lock is another file.
  const other = await b.lock('other', LONG)
  assert.ok(other !== undefined)
  await held.release()
  assert.ok(!existsSync(join(dir, LOCK)), 'released: the file is gone')
  const next = await b.lock('api', LONG)
  assert.ok(next !== undefined)
  await next.release()
  await other.release()
  assert.deepEqual(readdirSync(dir), [], 'nothing left behind')
})

test('contenders from two stores never hold the lock at the same time', async (t) => {
  const [a, b] = stores(tempDir(t))
  let inside = 0
  let most = 0
  let entered = 0
  await Promise.all(Array.from({ length: 16 }, async (_, i) => {
    const lock = await (i % 2 === 0 ? a : b).lock('api', { leaseMs: 60_000, waitMs: 20_000 })
    assert.ok(lock !== undefined, `contender ${i} got the lock`)
    inside++
    entered++
    most = Math.max(most, inside)
    await sleep(5)
    inside--
    await lock.release()
  }))
  assert.equal(entered, 16)
  assert.equal(most, 1)
})

test('a lock whose holder is gone is taken over once its lease has passed, not before', async (t) => {
  const dir = tempDir(t)
  const [a, b] = stores(dir)
  // A holder that died: its lease ended a moment ago.
  writeFileSync(join(dir, LOCK), JSON.stringify({ owner: 'dead-process', pid: 999_999, expiresAt: Date.now() - 1 }), { mode: 0o600 })
  const taken = await a.lock('api', LONG)
  assert.ok(taken !== undefined, 'an expired lease is taken over at once')
  assert.doesNotMatch(readFileSync(join(dir, LOCK), 'utf8'), /dead-process/)
  await taken.release()

  // A holder that died before writing its lock file: held until a lease after the file's time.
  writeFileSync(join(dir, LOCK), '', { mode: 0o600 })
  assert.equal(await b.lock('api', { leaseMs: 60_000, waitMs: 0 }), undefined, 'an empty file just created is held')
  const past = (Date.now() - 120_000) / 1000
  utimesSync(join(dir, LOCK), past, past)
  const again = await b.lock('api', { leaseMs: 60_000, waitMs: 0 })
  assert.ok(again !== undefined, 'an empty file older than the lease is taken over')
  await again.release()
  assert.deepEqual(readdirSync(dir), [])
})

test('only the owner releases: a holder that overran its lease does not remove the lock its successor took', async (t) => {
  const dir = tempDir(t)
  const [a, b] = stores(dir)
  const slow = await a.lock('api', { leaseMs: 100, waitMs: 0 })
  assert.ok(slow !== undefined)
  // b waits for the lease to pass, then takes the lock over.
  const successor = await b.lock('api', { leaseMs: 60_000, waitMs: 10_000 })
  assert.ok(successor !== undefined)
  const successorFile = readFileSync(join(dir, LOCK), 'utf8')
  await slow.release()
  assert.equal(readFileSync(join(dir, LOCK), 'utf8'), successorFile, 'the successor\'s lock is untouched')
  assert.equal(await a.lock('api', { leaseMs: 60_000, waitMs: 0 }), undefined, 'and still held')
  await successor.release()
  assert.ok(!existsSync(join(dir, LOCK)))
})

test('waiting for a held lock ends after waitMs, the token timeout the broker passes', async (t) => {
  const [a, b] = stores(tempDir(t))
  const held = await a.lock('api', LONG)
  assert.ok(held !== undefined)
  const started = Date.now()
  assert.equal(await b.lock('api', { leaseMs: 60_000, waitMs: 400 }), undefined)
  const waited = Date.now() - started
  assert.ok(waited >= 390, `waited ${waited} ms`)
  // Generous: the machine may be busy, but not a lease (60 s) long.
  assert.ok(waited < 5000, `waited ${waited} ms`)

  // Released while b waits: b gets it then, without waiting out waitMs.
  setTimeout(() => { held.release().catch(() => {}) }, 200)
  const before = Date.now()
  const next = await b.lock('api', { leaseMs: 60_000, waitMs: 20_000 })
  assert.ok(next !== undefined)
  assert.ok(Date.now() - before < 10_000)
  await next.release()
})
