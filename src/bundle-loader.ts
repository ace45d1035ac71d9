import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'
import type { ServeCommands, ToolCommands } from './command-modules.js'

/**
 * Loads the commands' bundles in dist/ (CommonJS, built by
 * scripts/build.mjs) the way Node loads a CommonJS module, except that each
 * is compiled from the V8 code cache the build wrote beside it: compiling a
 * bundle's code is most of the start-up of a short command such as `token`.
 * A cache made by another Node or V8 version, or with other V8 flags, is
 * rejected by V8 and the code compiled from the source as usual.
 */

export const CODE_CACHE_SUFFIX = '.v8-cache'

export interface LoadedBundle {
  exports: unknown
  /** The compiled script (the build makes its code cache after a warm-up run); none when Node's loader ran the file. */
  script?: Script
}

/**
 * Runs a CommonJS file with `exports`, `require` (resolving from its folder),
 * `module`, `__filename` and `__dirname`. Under `--enable-source-maps` it is
 * left to Node's loader, which maps stack traces to src/ and which a script
 * of node:vm does not get on Node 20.
 */
export function loadBundle (file: string): LoadedBundle {
  if (process.sourceMapsEnabled) return { exports: createRequire(file)(file) as unknown }
  // The build keeps the bundles ASCII, so Latin-1 reads them as they are, in a tenth of UTF-8's time.
  const source = readFileSync(file, 'latin1')
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(`${file}${CODE_CACHE_SUFFIX}`)
  } catch {
    // No cache: compiled from the source.
  }
  // The wrapper on a line of its own, so the file's lines keep their numbers in stack traces.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {\n${source}\n})`, { filename: file, lineOffset: -1, cachedData })
  const module = { exports: {} }
  const wrapper = script.runInThisContext() as (exports: object, require: NodeRequire, module: object, filename: string, dirname: string) => void
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file))
  return { exports: module.exports, script }
}

const here = dirname(fileURLToPath(import.meta.url))

export async function serveCommands (): Promise<ServeCommands> {
  return loadBundle(join(here, 'serve.js')).exports as ServeCommands
}

export async function toolCommands (): Promise<ToolCommands> {
  return loadBundle(join(here, 'tools.js')).exports as ToolCommands
}
