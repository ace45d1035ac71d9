import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'
import type { ServeCommands, ToolCommands } from './command-modules.js'

/**
 * Loads the commands' bundles in dist/ (CommonJS, built by
 * scripts/build.mjs) the way Node loads a CommonJS module, except that each
 * is compiled from the V8 code cache the build wrote beside it: compiling a
 * bundle's code is most of the start-up of a short command such as `token`.
 *
 * A cache is used only as the build listed it in dist/code-cache.json: made
 * by this very Node on this architecture, for this exact source (V8 itself
 * compares a source's length only, and a damaged cache can crash it), and
 * the cache file itself unchanged (SHA-256 of both). V8 then still rejects
 * it when run with other V8 flags. Whatever is not used is compiled from
 * the source, as Node would.
 */

export const CODE_CACHE_SUFFIX = '.v8-cache'
/** What the build wrote: `{ node, arch, bundles: { 'tools.js': { source, cache } } }`, SHA-256 in hex. */
export const CODE_CACHE_MANIFEST = 'code-cache.json'

export interface CodeCacheManifest {
  node: string
  arch: string
  bundles: Record<string, { source: string, cache: string }>
}

export interface LoadedBundle {
  exports: unknown
  /** The compiled script (the build makes its code cache after a warm-up run); none when Node's loader ran the file. */
  script?: Script
  /** `used`: compiled from the cache; `rejected`: V8 refused it (other V8 flags); `none`: no usable cache. */
  cache: 'used' | 'rejected' | 'none'
}

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The bundle's code cache when the manifest vouches for it and the source it was made from, else undefined. */
function cachedDataFor (file: string, source: Buffer): Buffer | undefined {
  let manifest: Partial<CodeCacheManifest>
  let cache: Buffer
  try {
    manifest = JSON.parse(readFileSync(join(dirname(file), CODE_CACHE_MANIFEST), 'utf8')) as Partial<CodeCacheManifest>
    cache = readFileSync(`${file}${CODE_CACHE_SUFFIX}`)
  } catch {
    return undefined
  }
  const entry = manifest.bundles?.[basename(file)]
  if (manifest.node !== process.version || manifest.arch !== process.arch || entry === undefined) return undefined
  return sha256(source) === entry.source && sha256(cache) === entry.cache ? cache : undefined
}

/**
 * Runs a bundle of dist/ (CommonJS, its module wrapper written in the file
 * by the build) with `exports`, `require` (resolving from its folder),
 * `module`, `__filename` and `__dirname`. Under `--enable-source-maps` it is
 * left to Node's loader, which maps stack traces to src/ and which a script
 * of node:vm does not get on Node 20.
 */
export function loadBundle (file: string): LoadedBundle {
  if (process.sourceMapsEnabled) return { exports: createRequire(file)(file) as unknown, cache: 'none' }
  const { script, cache } = compileBundle(file)
  const module = { exports: {} }
  const wrapper = script.runInThisContext() as (exports: object, require: NodeRequire, module: object, filename: string, dirname: string) => void
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file))
  return { exports: module.exports, script, cache }
}

/**
 * The bundle compiled, in a function of its own: the file's bytes and its
 * cache (3 MB for dist/serve.js, outside V8's heap) are no longer held by a
 * live frame when the bundle runs. Held there, they outlived the young
 * collections of the bundle's start-up, were moved to the old generation and
 * stayed in memory until its first full collection, seconds later.
 */
function compileBundle (file: string): { script: Script, cache: LoadedBundle['cache'] } {
  const bytes = readFileSync(file)
  const cachedData = cachedDataFor(file, bytes)
  // The build keeps the bundles ASCII, so Latin-1 reads them as they are, in a tenth of UTF-8's time.
  const source = bytes.toString('latin1')
  // The file holds its module wrapper (scripts/build.mjs): run as a script, its value is that function.
  const script = new Script(source, { filename: file, cachedData })
  return { script, cache: cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'used' }
}

const here = dirname(fileURLToPath(import.meta.url))

export async function serveCommands (): Promise<ServeCommands> {
  return loadBundle(join(here, 'serve.js')).exports as ServeCommands
}

export async function toolCommands (): Promise<ToolCommands> {
  return loadBundle(join(here, 'tools.js')).exports as ToolCommands
}
