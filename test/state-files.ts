import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { settingsHash, stateKeys } from '../src/auth/state-keys.js'

/** A route's token files in a state dir: `<route>.<16 hex digits>.token.json`, one per set of auth settings. */
export function tokenFiles (dir: string, route: string): string[] {
  const pattern = new RegExp(`^${route.replaceAll('.', '\\.')}\\.[0-9a-f]{16}\\.token\\.json$`)
  return readdirSync(dir).filter((name) => pattern.test(name)).sort()
}

/** The path of the route's token file; fails unless there is exactly one. */
export function tokenFile (dir: string, route: string): string {
  const names = tokenFiles(dir, route)
  assert.equal(names.length, 1, `one token file for ${route}: ${readdirSync(dir).join(' ')}`)
  return join(dir, names[0] as string)
}

/**
 * The 16 hex digits a route's file and lock names carry for these (resolved)
 * auth settings: the start of the state dir's keyed settings hash. Creates
 * the dir's secret if it has none yet, as the store would.
 */
export async function settingsTag (dir: string, settings: unknown, stateKey?: string): Promise<string> {
  return settingsHash((await stateKeys(dir, stateKey)).hash, settings).slice(0, 16)
}
