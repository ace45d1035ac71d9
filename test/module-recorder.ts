import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { tempDir } from './cli-helpers.js'

/**
 * Records every module a child process resolves, through a module hook
 * registered by `options` (for NODE_OPTIONS); `loaded()` lists them, a file
 * of the bundle (dist/) standing for the sources its source map lists.
 */
export function moduleRecorder (t: TestContext): { options: string, loaded: () => string[] } {
  const dir = tempDir(t)
  const log = join(dir, 'modules.log')
  writeFileSync(log, '')
  const hooks = join(dir, 'hooks.mjs')
  writeFileSync(hooks, [
    "import { appendFileSync } from 'node:fs'",
    'let log',
    'export function initialize (data) { log = data.log }',
    'export async function resolve (specifier, context, next) {',
    '  const resolved = await next(specifier, context)',
    "  appendFileSync(log, resolved.url + '\\n')",
    '  return resolved',
    '}'
  ].join('\n'))
  const register = join(dir, 'register.mjs')
  writeFileSync(register, [
    "import { register } from 'node:module'",
    `register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { log: ${JSON.stringify(log)} } })`
  ].join('\n'))
  return {
    options: `--import ${pathToFileURL(register).href}`,
    loaded: () => sourcesOf(readFileSync(log, 'utf8').split('\n').filter((l) => l !== ''))
  }
}

/** Module URLs, each file of dist/ replaced by the sources bundled into it. */
function sourcesOf (urls: string[]): string[] {
  return urls.flatMap((url) => {
    if (!url.startsWith('file:')) return [url]
    const map = `${fileURLToPath(url)}.map`
    if (!url.includes('/dist/') || !existsSync(map)) return [url]
    const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }
    return sources.map((source) => pathToFileURL(resolve(dirname(map), source)).href)
  })
}
