/**
 * A worker thread contending for a file lock (file-store-lock.test.ts): its
 * own event loop, so several contenders run truly at once, as processes do.
 * For each path it is sent, it takes the lock, counts itself in the shared
 * `inside` counter while holding it (an overlap when someone else is already
 * in), and lets go.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { acquireFileLock } from '../src/auth/file-lock.js'

export interface ContenderData {
  /** [0]: holders inside right now; [1]: times a holder found another inside. */
  shared: Int32Array
}

export interface Round {
  path: string
  leaseMs: number
  waitMs: number
}

const { shared } = workerData as ContenderData
const port = parentPort
if (port === null) throw new Error('lock-contender runs as a worker thread')

port.on('message', (round: Round) => {
  contend(round).then((held) => port.postMessage({ held }), (err: unknown) => port.postMessage({ held: false, error: String(err) }))
})

async function contend (round: Round): Promise<boolean> {
  const lock = await acquireFileLock(round.path, { leaseMs: round.leaseMs, waitMs: round.waitMs })
  if (lock === undefined) return false
  if (Atomics.add(shared, 0, 1) !== 0) Atomics.add(shared, 1, 1)
  // Held for a moment of real time, so an overlapping holder is caught inside.
  await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 3))
  Atomics.sub(shared, 0, 1)
  await lock.release()
  return true
}
