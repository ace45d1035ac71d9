import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ROOT, tempDir } from './cli-helpers.js'

export interface LoadRecorder {
  /** For the child's environment: NODE_OPTIONS requiring test/fixtures/load-recorder.cjs, and its output file. */
  env: NodeJS.ProcessEnv
  /** Files read or resolved, as URLs, each bundle of dist/ standing for the sources its source map lists. */
  loaded: () => string[]
  /** Files read or resolved, as paths. */
  files: () => string[]
  /** Node's built-in modules loaded (public names). */
  builtins: () => string[]
}

/**
 * Records, in a child process run with `env`, the files it reads (the bundles
 * of dist/ are read, then compiled) and resolves (packages left out of the
 * bundles), and the built-in modules it loads; written when the child exits.
 */
export function loadRecorder (t: TestContext): LoadRecorder {
  const file = join(tempDir(t), 'loaded.json')
  const record = (): { files: string[], builtins: string[] } => JSON.parse(readFileSync(file, 'utf8')) as { files: string[], builtins: string[] }
  return {
    env: { NODE_OPTIONS: `--require ${join(ROOT, 'test/fixtures/load-recorder.cjs')}`, LOAD_RECORD_FILE: file },
    loaded: () => sourcesOf(record().files.map((f) => pathToFileURL(f).href)),
    files: () => record().files,
    builtins: () => record().builtins
  }
}

/** Module URLs, each file of dist/ replaced by the sources bundled into it. */
export function sourcesOf (urls: string[]): string[] {
  return urls.flatMap((url) => {
    if (!url.startsWith('file:')) return [url]
    const map = `${fileURLToPath(url)}.map`
    if (!url.includes('/dist/') || !existsSync(map)) return [url]
    const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }
    return sources.map((source) => pathToFileURL(resolve(dirname(map), source)).href)
  })
}
