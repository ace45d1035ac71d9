import assert from 'node:assert/strict'
import { test } from 'node:test'
import { locationRewriter } from '../src/proxy/location.js'

test('a Location into the route\'s upstream becomes the local path; anything else passes untouched; no rewrite leaves the proxy', () => {
  // [upstream, prefix, Location from the upstream, Location the client gets]
  const cases: Array<[string, string, string, string]> = [
    // Into the upstream: rewritten under the prefix, query and fragment kept.
    ['https://api.example/v1', '/api', 'https://api.example/v1/items/7', '/api/items/7'],
    ['https://api.example/v1', '/api', 'https://api.example/v1/items?page=2#top', '/api/items?page=2#top'],
    ['https://api.example/v1', '/api', '/v1/items', '/api/items'],
    ['https://api.example/v1/', '/api', '/v1/items', '/api/items'],
    ['https://api.example/v1', '/api', 'https://api.example/v1', '/api'],
    ['https://api.example', '/api', 'https://api.example/', '/api/'],
    ['https://api.example', '/', 'https://api.example/items', '/items'],
    ['https://api.example', '/', 'https://api.example', '/'],
    ['https://api.example', '/', 'https://api.example?x=1', '/?x=1'],
    ['https://api.example:8443', '/api', 'https://api.example:8443/a', '/api/a'],
    ['https://api.example', '/api', 'HTTPS://API.EXAMPLE/a', '/api/a'],
    // Outside the upstream's base path, or another origin (scheme, host, port): untouched.
    ['https://api.example/v1', '/api', 'https://api.example/v2/items', 'https://api.example/v2/items'],
    ['https://api.example/v1', '/api', 'https://api.example/v10', 'https://api.example/v10'],
    ['https://api.example/v1', '/api', '/v2/items', '/v2/items'],
    ['https://api.example', '/api', 'http://api.example/a', 'http://api.example/a'],
    ['https://api.example', '/api', 'https://api.example:444/a', 'https://api.example:444/a'],
    ['https://api.example', '/api', 'https://login.example/authorize', 'https://login.example/authorize'],
    // Relative references resolve the same against the local URL: untouched.
    ['https://api.example/v1', '/api', 'items/7', 'items/7'],
    ['https://api.example/v1', '/api', '../up', '../up'],
    ['https://api.example/v1', '/api', '?page=2', '?page=2'],
    ['https://api.example', '/api', '//evil.example/x', '//evil.example/x'],
    ['https://api.example', '/api', 'not a url:::', 'not a url:::'],
    // Behind "/", an empty first segment would come out as another host: left as the upstream wrote it.
    ['https://api.example', '/', 'https://api.example//evil.example/x', 'https://api.example//evil.example/x'],
    ['https://api.example', '/', '/\\evil.example/x', '/\\evil.example/x'],
    ['https://api.example/v1', '/', 'https://api.example/v1//evil.example', 'https://api.example/v1//evil.example'],
    // Under a prefix the same path stays on the proxy.
    ['https://api.example', '/api', 'https://api.example//evil.example/x', '/api//evil.example/x']
  ]
  for (const [upstream, prefix, location, expected] of cases) {
    assert.equal(locationRewriter(upstream, prefix)(location), expected, `${upstream} at ${prefix}: ${location}`)
  }
})
