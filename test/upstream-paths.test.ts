import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pathOf, upstreamPath, upstreamTarget } from '../src/proxy/upstream.js'

test('a local request target maps to the upstream base path plus the rest of the path, the query byte for byte', () => {
  // [upstream, prefix, local target, upstream target]
  const cases: Array<[string, string, string, string]> = [
    ['https://api.example/v1', '/api', '/api/items/7', '/v1/items/7'],
    ['https://api.example/v1/', '/api', '/api/items/7', '/v1/items/7'],
    ['https://api.example', '/api', '/api/items', '/items'],
    ['https://api.example', '/api', '/api', '/'],
    ['https://api.example', '/api', '/api?a=1', '/?a=1'],
    ['https://api.example/v1', '/api', '/api', '/v1'],
    ['https://api.example/v1', '/api', '/api?a=1', '/v1?a=1'],
    ['https://api.example/v1', '/api', '/api/', '/v1/'],
    ['https://api.example', '/', '/', '/'],
    ['https://api.example', '/', '/items?x', '/items?x'],
    ['https://api.example/v1', '/', '/items', '/v1/items'],
    ['https://api.example/v1', '/', '/', '/v1/'],
    ['https://api.example', '/a/b', '/a/b/c', '/c'],
    // Encodings and odd queries go on untouched: re-encoding could break signed URLs.
    ['https://api.example', '/api', '/api/a%2Fb/%7E?sig=a%2Bb%3D&x=%20', '/a%2Fb/%7E?sig=a%2Bb%3D&x=%20'],
    ['https://api.example', '/api', '/api/x?a=1?b=2', '/x?a=1?b=2'],
    ['https://api.example', '/api', '/api/x?', '/x?']
  ]
  for (const [upstream, prefix, local, expected] of cases) {
    assert.equal(upstreamPath(upstreamTarget(upstream, prefix), local), expected, `${upstream} at ${prefix}: ${local}`)
  }
})

test('the upstream target: origin for the dispatcher, Host for the upstream', () => {
  const cases: Array<[string, string, { origin: string, host: string }]> = [
    ['https://api.example/v1', '/api', { origin: 'https://api.example', host: 'api.example' }],
    ['https://api.example:443/v1', '/api', { origin: 'https://api.example', host: 'api.example' }],
    ['http://127.0.0.1:8080', '/', { origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' }],
    ['http://[::1]:9000/x', '/x', { origin: 'http://[::1]:9000', host: '[::1]:9000' }]
  ]
  for (const [upstream, prefix, expected] of cases) {
    const target = upstreamTarget(upstream, prefix)
    assert.deepEqual({ origin: target.origin, host: target.host }, expected, upstream)
  }
})

test('the logged path of a request target has no query, which may carry keys', () => {
  const cases: Array<[string, string]> = [
    ['/api/items', '/api/items'],
    ['/api/items?api_key=secret', '/api/items'],
    ['/?', '/'],
    ['/a?b?c', '/a']
  ]
  for (const [url, expected] of cases) assert.equal(pathOf(url), expected, url)
})
