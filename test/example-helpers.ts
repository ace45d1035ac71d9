import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, isAbsolute, join } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const EXAMPLES_DIR = fileURLToPath(new URL('../config/examples/', import.meta.url))

/** The `${file:PATH}` paths an example reads. */
export function filePaths (text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{file:([^}]+)\}/g)].map((m) => m[1] as string))]
}

/**
 * An example config's text (`name` in config/examples/, or an absolute path) with each `${file:PATH}` pointed at a temporary
 * file holding `contents(PATH)`: the example as shipped, with files the test
 * owns (and may rewrite, as a rotation would). Returns the text, the parsed
 * object and where each path went.
 */
export function exampleWithFiles (t: TestContext | undefined, name: string, contents: (path: string) => string): { text: string, config: Record<string, unknown>, files: Record<string, string> } {
  let text = readFileSync(isAbsolute(name) ? name : join(EXAMPLES_DIR, name), 'utf8')
  const dir = mkdtempSync(join(tmpdir(), 'bearer-proxy-example-'))
  if (t !== undefined) t.after(() => rmSync(dir, { recursive: true, force: true }))
  else process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const files: Record<string, string> = {}
  for (const path of filePaths(text)) {
    const local = join(dir, basename(path))
    writeFileSync(local, contents(path), { mode: 0o600 })
    files[path] = local
    text = text.split(`\${file:${path}}`).join(`\${file:${local}}`)
  }
  return { text, config: parse(text) as Record<string, unknown>, files }
}
