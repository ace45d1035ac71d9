import { randomBytes } from 'node:crypto'
import { close, fstat, lstat, open, unlink, writeFile } from './fs-async.js'
import { readStateFile } from './state-dir.js'
import type { LockOptions, StoreLock } from './token-store.js'

/** Polling steps while another process holds the lock: short at first, then every 100 ms. */
const FIRST_POLL_MS = 5
const MAX_POLL_MS = 100
/** Retries without a pause when the lock was freed just now; past these, others are racing for it: wait. */
const QUICK_RETRIES = 3
/**
 * A breaker file this old was left by a process that died (or stood still)
 * inside the breaker's critical section, which takes a few file operations,
 * milliseconds: it is cleared then, so a dead breaker blocks nobody for long.
 */
const BREAKER_STALE_MS = 5000
/** A release waits for the breaker at most this long (long enough to clear a dead one), then leaves the lock to its lease. */
const RELEASE_WAIT_MS = BREAKER_STALE_MS + 1000

/** What a lock file holds: who took it and until when. */
interface LockContent {
  owner: string
  pid: number
  /** Epoch ms (wall clock, shared by every process on the machine). */
  expiresAt: number
}

/** A lock file as found: its exact text, inode and modification time identify it. */
interface Found {
  text: string
  ino: number
  mtimeMs: number
  expiresAt: number
}

/** The breaker was held by someone else: nothing was done. */
const BUSY = Symbol('busy')

/*
 * The renewal lock: an exclusive lock file with a lease, shared by every
 * process using the same directory.
 *
 * - Taking it: create `<lock>` with O_CREAT | O_EXCL (`wx`, 0600). While the
 *   name exists nobody else can create it, so exactly one creator wins. The
 *   file names a random owner and when its lease ends.
 * - Removing it, whether a holder releases its own lock or a waiter clears
 *   one whose lease has passed (its holder died), happens only while holding
 *   the breaker `<lock>.break`, itself created with O_EXCL. Under the breaker
 *   the remover reads the lock again (content, inode, mtime, from one open
 *   file) and unlinks it only if it is the very file judged removable: its
 *   own, or the one it saw expired.
 *
 * Why no interleaving gives two holders: a lock file is unlinked only by a
 * breaker holder, and there is one breaker holder at a time; so between its
 * check and its unlink nobody else can remove the lock, hence nobody can
 * create a new one under the name (O_EXCL fails while it exists), and the
 * unlink removes exactly the file checked. A live lock is therefore removed
 * by its owner alone; anyone else removes only a lock whose lease ended, and
 * what was checked is what is removed. Nothing is ever renamed aside and put
 * back: putting back cannot be atomic against a third process that created
 * the lock meanwhile, which is how two or three holders came about before.
 * Taking a free lock needs no breaker (O_EXCL decides), so the common path
 * costs one create.
 *
 * What remains is the lease itself, as with any lease: a holder that stands
 * still past its lease (or a breaker holder past BREAKER_STALE_MS, for a
 * critical section of milliseconds) is overtaken while it still believes it
 * holds. A breaker left by a process that died inside it is cleared after
 * BREAKER_STALE_MS, checked the same way (inode and mtime unchanged).
 */
export async function acquireFileLock (path: string, options: LockOptions): Promise<StoreLock | undefined> {
  const deadline = Date.now() + options.waitMs
  const owner = randomBytes(16).toString('hex')
  let pause = FIRST_POLL_MS
  let quick = 0
  // Bounded by the deadline; the count bound guards against a clock that stands still.
  for (let attempt = 0; attempt < 100_000; attempt++) {
    const content: LockContent = { owner, pid: process.pid, expiresAt: Date.now() + options.leaseMs }
    const text = JSON.stringify(content)
    const ino = await createExclusive(path, text)
    if (ino !== undefined) return new FileLock(path, text, ino)
    const found = await readLock(path, options.leaseMs)
    // Gone meanwhile, or stale and now removed (its holder died or overran its lease): try again at once.
    const freed = found === undefined || (found.expiresAt <= Date.now() && await removeStale(path, found, options.leaseMs))
    if (freed && quick++ < QUICK_RETRIES) continue
    const left = deadline - Date.now()
    if (left <= 0) return undefined
    await sleep(Math.min(pause, left))
    pause = Math.min(pause * 2, MAX_POLL_MS)
  }
  return undefined
}

class FileLock implements StoreLock {
  readonly #path: string
  readonly #text: string
  readonly #ino: number
  #released = false

  constructor (path: string, text: string, ino: number) {
    this.#path = path
    this.#text = text
    this.#ino = ino
  }

  /**
   * Removes the lock if it is still ours: past our lease someone may have
   * taken it over and holds it now. Under the breaker, like any removal (see
   * above): without it, a waiter that found our overrun lock expired could
   * check it, we remove it, a third process creates its own, and the waiter's
   * unlink then removes that live lock.
   */
  async release (): Promise<void> {
    if (this.#released) return
    this.#released = true
    const deadline = Date.now() + RELEASE_WAIT_MS
    let pause = FIRST_POLL_MS
    for (let attempt = 0; attempt < 10_000; attempt++) {
      let done
      try {
        done = await underBreaker(this.#path, async () => {
          const found = await readLock(this.#path, 0)
          if (found !== undefined && found.text === this.#text && found.ino === this.#ino) await unlinkIfPresent(this.#path)
        })
      } catch (err) {
        // The folder itself is gone: so is the lock.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
        throw err
      }
      if (done !== BUSY) return
      const left = deadline - Date.now()
      if (left <= 0) break
      await sleep(Math.min(pause, left))
      pause = Math.min(pause * 2, MAX_POLL_MS)
    }
    throw new Error(`${this.#path}: its breaker file stayed held by another process`)
  }
}

/**
 * Removes the lock file if it is still the expired one `found` describes;
 * true when it is gone, false when it is another (or the breaker was busy:
 * then the caller polls again).
 */
async function removeStale (path: string, found: Found, leaseMs: number): Promise<boolean> {
  const result = await underBreaker(path, async () => {
    const now = await readLock(path, leaseMs)
    if (now === undefined) return true
    if (now.text !== found.text || now.ino !== found.ino || now.mtimeMs !== found.mtimeMs) return false
    await unlinkIfPresent(path)
    return true
  })
  return result === BUSY ? false : result
}

/**
 * Runs `critical` holding `<lock>.break`, or returns BUSY at once if another
 * process holds it (clearing it first when it was left by a dead process).
 */
async function underBreaker<T> (lockPath: string, critical: () => Promise<T>): Promise<T | typeof BUSY> {
  const breaker = `${lockPath}.break`
  const text = JSON.stringify({ owner: randomBytes(16).toString('hex'), pid: process.pid })
  const ino = await createExclusive(breaker, text)
  if (ino === undefined) {
    await clearDeadBreaker(breaker)
    return BUSY
  }
  try {
    return await critical()
  } finally {
    // Ours only: had we stood still past BREAKER_STALE_MS, the breaker now there may be another's.
    const now = await readStateFile(breaker).catch(() => undefined)
    if (now !== undefined && now.ino === ino && now.data.toString('utf8') === text) await unlinkIfPresent(breaker)
  }
}

/** A breaker older than BREAKER_STALE_MS was left by a process that died holding it. */
async function clearDeadBreaker (breaker: string): Promise<void> {
  const found = await readStateFile(breaker).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  if (found === undefined || Date.now() - found.mtimeMs < BREAKER_STALE_MS) return
  // Still the same file, untouched: not one just created by a live process.
  const again = await lstat(breaker).catch(() => undefined)
  if (again !== undefined && again.ino === found.ino && again.mtimeMs === found.mtimeMs) await unlinkIfPresent(breaker)
}

/** Creates `path` only if it does not exist (O_CREAT | O_EXCL); its inode, or undefined when it exists. */
async function createExclusive (path: string, text: string): Promise<number | undefined> {
  let fd
  try {
    fd = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined
    throw err
  }
  try {
    // Until this lands a reader sees an empty file: it counts as held (see readLock).
    await writeFile(fd, text)
    return (await fstat(fd)).ino
  } finally {
    await close(fd)
  }
}

/**
 * The lock file's content, identity and lease end; undefined when there is
 * none. A file that cannot be parsed (its creator is still writing it, or
 * died doing so) is held until `leaseMs` after it was last written.
 */
async function readLock (path: string, leaseMs: number): Promise<Found | undefined> {
  let file
  try {
    file = await readStateFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const text = file.data.toString('utf8')
  let expiresAt = file.mtimeMs + leaseMs
  try {
    const content = JSON.parse(text) as Partial<LockContent>
    if (typeof content.expiresAt === 'number') expiresAt = content.expiresAt
  } catch {}
  return { text, ino: file.ino, mtimeMs: file.mtimeMs, expiresAt }
}

async function unlinkIfPresent (path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  })
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
