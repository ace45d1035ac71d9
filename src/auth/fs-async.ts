import * as fs from 'node:fs'
import { promisify } from 'node:util'

/**
 * The file calls of the token stores, as promises made from node:fs's
 * callback API. node:fs/promises would do the same calls, but loading it
 * loads more modules (file handles, streams, readline) into every `token`
 * that reads a stored token. Files are opened as descriptors, closed by the
 * caller.
 */
export const chmod = promisify(fs.chmod)
export const close = promisify(fs.close)
export const fstat = promisify(fs.fstat)
export const link = promisify(fs.link)
export const lstat = promisify(fs.lstat)
export const mkdir = promisify(fs.mkdir)
export const open = promisify(fs.open)
export const readdir = promisify(fs.readdir)
export const readFile = promisify(fs.readFile)
export const rename = promisify(fs.rename)
export const rm = promisify(fs.rm)
export const unlink = promisify(fs.unlink)
export const writeFile = promisify(fs.writeFile)
