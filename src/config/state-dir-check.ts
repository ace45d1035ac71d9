import { lstatSync } from 'node:fs'
import { dirIssue } from '../auth/state-dir.js'

/** The check at config load: a missing folder is fine (the store creates it 0700 and checks it then). */
export function stateDirIssue (dir: string): string | undefined {
  // Windows has neither these mode bits nor uids; its ACLs are left to the user.
  if (process.platform === 'win32') return undefined
  let stat
  try {
    stat = lstatSync(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? undefined : `cannot inspect ${dir} (${code ?? 'error'})`
  }
  return dirIssue(dir, stat)
}
