import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'

/** The built CLI: `npm test` builds before testing; run `npm run build` when running a file alone. */
export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Runs `node dist/cli.js ...args` asynchronously (servers of the test process
 * must keep answering meanwhile), with only the given environment variables.
 */
export function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, cwd?: string, timeoutMs?: number } = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`)
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? ROOT,
      // PATH only: no inherited BEARER_PROXY_CONFIG or secrets from the developer's shell.
      env: { PATH: process.env.PATH, ...options.env },
      timeout: options.timeoutMs ?? 30_000,
      encoding: 'utf8'
    }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string, signal?: NodeJS.Signals }) | null
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        stdout,
        stderr
      })
    })
  })
}

/** A fresh temporary folder, removed after the test. */
export function tempDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'bearer-proxy-test-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
