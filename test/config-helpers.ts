import assert from 'node:assert/strict'
import { parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'

/** The issues of a config that must not load; each is one line. */
export function issuesOf (load: () => unknown): string[] {
  let caught: unknown
  try {
    load()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`)
  assert.ok(caught.issues.length > 0)
  for (const issue of caught.issues) assert.doesNotMatch(issue, /\n/, 'one line per issue')
  assert.equal(caught.message, caught.issues.join('\n'))
  return caught.issues
}

/** The issues of a parsed config object that must not load, with only the given environment. */
export function parseIssues (raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  return issuesOf(() => parseConfig(raw, { env }))
}
