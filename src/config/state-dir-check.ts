import { lstatSync, type Stats } from 'node:fs'

/**
 * Why a folder cannot hold tokens, or undefined. Tokens there are trusted
 * when read back and written through its entries, so nobody but this user
 * may change it: not other users through the mode bits, nor another owner
 * (who could chmod it). The folder itself is inspected (lstat): a symbolic
 * link is refused, since whoever can change the link can point it elsewhere,
 * and following it would check one folder and then use another.
 */
export function dirIssue (dir: string, stat: Stats): string | undefined {
  if (stat.isSymbolicLink()) return `${dir} is a symbolic link; refused, as it could be pointed at another folder: name the folder itself`
  if (!stat.isDirectory()) return `${dir} is not a directory`
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid) return `${dir} belongs to another user (uid ${stat.uid}, not ${uid}); use a folder of your own, mode 0700`
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0')
    return `${dir} may be written by other users (mode ${mode}); make it 0700: chmod 700 ${dir}`
  }
  return undefined
}

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
