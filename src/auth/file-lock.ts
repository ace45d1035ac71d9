import { randomBytes } from 'node:crypto'
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import type { LockOptions, StoreLock } from './token-store.js'

/** Polling steps while another process holds the lock: short at first, then every 100 ms. */
const FIRST_POLL_MS = 5
const MAX_POLL_MS = 100
/** Retries without a pause when the lock was freed just now; past these, others are racing for it: wait. */
const QUICK_RETRIES = 3

/** What a lock file holds: who took it and until when. */
interface LockContent {
  owner: string
  pid: number
  /** Epoch ms (wall clock, shared by every process on the machine). */
  expiresAt: number
}

/** A lock file as found: its exact text and modification time identify it. */
interface Found {
  text: string
  mtimeMs: number
  expiresAt: number
}

/**
 * An exclusive lock file with a lease, shared by every process using the same
 * directory. It is created with O_EXCL (`wx`, mode 0600), so exactly one
 * creator wins; it names its owner (random per acquisition) and when its lease
 * ends. A holder that died is overtaken once its lease has passed; a stale
 * lock is removed only if it is still the very file judged stale (see
 * `removeIfUnchanged`), and only the owner releases a live one.
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
    if (await createExclusive(path, text)) return new FileLock(path, text)
    const found = await readLock(path, options.leaseMs)
    // Gone meanwhile, or stale and now removed (its holder died or overran its lease): try again at once.
    const freed = found === undefined || (found.expiresAt <= Date.now() && await removeIfUnchanged(path, found))
    if (freed && quick++ < QUICK_RETRIES) continue
    const left = deadline - Date.now()
    if (left <= 0) return undefined
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)))
    pause = Math.min(pause * 2, MAX_POLL_MS)
  }
  return undefined
}

class FileLock implements StoreLock {
  readonly #path: string
  readonly #text: string
  #released = false

  constructor (path: string, text: string) {
    this.#path = path
    this.#text = text
  }

  async release (): Promise<void> {
    if (this.#released) return
    this.#released = true
    // Only our own file: past our lease, someone may have taken the lock over and holds it now.
    const found = await readLock(this.#path, 0)
    if (found !== undefined && found.text === this.#text) await removeIfUnchanged(this.#path, found)
  }
}

/** Creates `path` only if it does not exist (O_CREAT | O_EXCL); false when it does. */
async function createExclusive (path: string, text: string): Promise<boolean> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try {
    // Until this lands a reader sees an empty file: it counts as held (see readLock).
    await handle.writeFile(text)
  } finally {
    await handle.close()
  }
  return true
}

/**
 * The lock file's content and lease end; undefined when there is none. A file
 * that cannot be parsed (its creator is still writing it, or died doing so)
 * is held until `leaseMs` after it was last written.
 */
async function readLock (path: string, leaseMs: number): Promise<Found | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)])
    let expiresAt = info.mtimeMs + leaseMs
    try {
      const content = JSON.parse(text) as Partial<LockContent>
      if (typeof content.expiresAt === 'number') expiresAt = content.expiresAt
    } catch {}
    return { text, mtimeMs: info.mtimeMs, expiresAt }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Removes `path` only if it is still the file `found` describes. There is no
 * compare-and-delete on files, so: rename it to a name of our own (atomic:
 * from then on nobody else can touch it), look at what we took, and delete it
 * if it is the one judged stale. If it is another (a new holder created it
 * in between), link it back under its name: that fails rather than replace a
 * file a third process may have created since, so a live lock is never
 * overwritten. True when the file judged stale is gone.
 */
async function removeIfUnchanged (path: string, found: Found): Promise<boolean> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`
  try {
    await rename(path, aside)
  } catch (err) {
    // Someone else removed it first.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  try {
    const taken = await readLock(aside, 0)
    if (taken !== undefined && taken.text === found.text && taken.mtimeMs === found.mtimeMs) return true
    await link(aside, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
    return false
  } finally {
    await unlink(aside).catch(() => {})
  }
}
