import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as errors from '../src/errors.js'

/**
 * The proxy answers only the codes it knows; any other error becomes a bare
 * 500 INTERNAL_ERROR. Every coded error must therefore be known, which holds
 * because the list is made from the errors themselves, not kept beside them.
 */
test('every coded error the proxy defines is one it answers with its own code and status', () => {
  const coded = Object.entries(errors).filter(([name]) => name.endsWith('Error') && name !== 'ConfigError')
  assert.ok(coded.length >= 11, 'the errors are found')
  const codes = new Set<string>()
  for (const [name, make] of coded) {
    const error = new (make as new (...args: unknown[]) => Error & { code: string, statusCode: number })('x', 'y')
    assert.ok(errors.PROXY_ERROR_CODES.has(error.code), `${name} (${error.code}) is a known code`)
    assert.ok(error.statusCode >= 400 && error.statusCode <= 599, `${name} carries an error status`)
    codes.add(error.code)
  }
  assert.deepEqual([...errors.PROXY_ERROR_CODES].sort(), [...codes].sort(), 'no code is listed without its error')
})
