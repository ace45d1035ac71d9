import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { RouteView } from '../src/admin/app.js'
import { tempDir } from './cli-helpers.js'
import { recordingUpstream } from './helpers.js'
import { spawnServe, writeConfig } from './operability-helpers.js'

/** A static API key of 8 digits: 10^8 candidates, hashed in seconds if its fingerprint were a plain hash. */
const SHORT_KEY = '40917235'

test('the /routes fingerprint of a short static key cannot be brute-forced back to it', async (t) => {
  const upstream = await recordingUpstream(t)
  const file = join(tempDir(t), 'bearer-proxy.json')
  writeConfig(file, {
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    routes: {
      key: { upstream: upstream.url, auth: { type: 'static', token: SHORT_KEY } },
      twin: { upstream: upstream.url, auth: { type: 'static', token: SHORT_KEY } },
      other: { upstream: upstream.url, auth: { type: 'static', token: '40917236' } }
    }
  })

  /** One `serve` process: a request on every route (so each holds its key), then its /routes. */
  async function fingerprints (): Promise<Record<string, string | null>> {
    const serve = await spawnServe(t, file)
    const proxyUrl = (await serve.waitForLog((l) => l.event === 'listening', 'the proxy')).url as string
    const adminUrl = (await serve.waitForLog((l) => l.event === 'listening' && l.listener === 'admin', 'the admin port')).url as string
    for (const route of ['key', 'twin', 'other']) {
      const res = await fetch(`${proxyUrl}/${route}/x`)
      assert.equal(res.status, 200)
      await res.arrayBuffer()
    }
    const { routes } = await (await fetch(`${adminUrl}/routes`)).json() as { routes: RouteView[] }
    return Object.fromEntries(routes.map((r) => [r.name, r.fingerprint]))
  }

  const first = await fingerprints()
  const second = await fingerprints()

  // Within one process it still tells keys apart.
  assert.match(first.key ?? '', /^[0-9a-f]{8}$/)
  assert.equal(first.twin, first.key, 'the same key, the same fingerprint')
  assert.notEqual(first.other, first.key, 'another key, another fingerprint')
  // It is not a function of the key alone: no table of candidates can be matched against it.
  assert.notEqual(first.key, createHash('sha256').update(SHORT_KEY).digest('hex').slice(0, 8), 'not a plain SHA-256')
  assert.notEqual(second.key, first.key, 'another process, another fingerprint of the same key')
  assert.equal(second.twin, second.key)
})
