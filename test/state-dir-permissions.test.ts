import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'
import { runCli, tempDir } from './cli-helpers.js'
import { writeConfig } from './operability-helpers.js'

const routes = { x: { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 't' } } }
const posix = process.platform === 'win32' ? 'POSIX modes and owners' : false

function load (stateDir: string): unknown {
  return parseConfig({ stateDir, routes }, { env: {} })
}

function issuesOf (stateDir: string): string[] {
  try {
    load(stateDir)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err.issues
  }
  assert.fail('the config loaded')
}

/** A folder with exactly this mode, whatever the umask. */
function folder (parent: string, name: string, mode: number): string {
  const dir = join(parent, name)
  mkdirSync(dir)
  chmodSync(dir, mode)
  return dir
}

test('a stateDir that other users may write is a config error naming stateDir', { skip: posix }, (t) => {
  const base = tempDir(t)
  const world = folder(base, 'world', 0o777)
  assert.deepEqual(issuesOf(world), [`stateDir: ${world} may be written by other users (mode 0777); make it 0700: chmod 700 ${world}`])
  const sticky = folder(base, 'sticky', 0o1777)
  assert.deepEqual(issuesOf(sticky), [`stateDir: ${sticky} may be written by other users (mode 1777); make it 0700: chmod 700 ${sticky}`])
  const group = folder(base, 'group', 0o770)
  assert.deepEqual(issuesOf(group), [`stateDir: ${group} may be written by other users (mode 0770); make it 0700: chmod 700 ${group}`])
})

test('a stateDir of this user that only it may write is taken; a missing one is no error (the store creates it 0700)', { skip: posix }, (t) => {
  const base = tempDir(t)
  for (const [name, mode] of [['private', 0o700], ['readable', 0o755]] as const) {
    const dir = folder(base, name, mode)
    assert.doesNotThrow(() => load(dir), name)
  }
  assert.doesNotThrow(() => load(join(base, 'not-yet', 'state')))
})

test('a relative stateDir is checked where it resolves: beside the config file', { skip: posix }, async (t) => {
  const base = tempDir(t)
  const world = folder(base, 'state', 0o777)
  const file = join(base, 'cfg.yaml')
  writeConfig(file, { stateDir: './state', routes })
  const result = await runCli(['check', '-c', file])
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, `stateDir: ${world} may be written by other users (mode 0777); make it 0700: chmod 700 ${world}\n`)
})

test('a stateDir that is a file is a config error', (t) => {
  const file = join(tempDir(t), 'state')
  writeFileSync(file, '')
  assert.deepEqual(issuesOf(file), [`stateDir: ${file} is not a directory`])
})

test('a stateDir that is a symbolic link is a config error: refused, since the link could be pointed elsewhere', { skip: posix }, (t) => {
  const base = tempDir(t)
  const real = folder(base, 'real', 0o700)
  const link = join(base, 'link')
  symlinkSync(real, link)
  assert.deepEqual(issuesOf(link), [`stateDir: ${link} is a symbolic link; refused, as it could be pointed at another folder: name the folder itself`])
})

// Only root can give a folder away; elsewhere this case cannot be set up.
const root = process.getuid?.() === 0 ? false : 'needs root to chown a folder to another user'
test('a stateDir owned by another user is a config error, even with mode 0700', { skip: posix || root }, (t) => {
  const dir = folder(tempDir(t), 'theirs', 0o700)
  chownSync(dir, 4242, 4242)
  assert.deepEqual(issuesOf(dir), [`stateDir: ${dir} belongs to another user (uid 4242, not ${process.getuid?.()}); use a folder of your own, mode 0700`])
})
