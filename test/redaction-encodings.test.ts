import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redactor } from '../src/auth/redaction.js'

const SECRET = 'Zx9 p+w&d"/é'

/** Every byte as %XX, as encoders that escape everything write it. */
function percentEveryByte (text: string, upper: boolean): string {
  const hex = [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
  return upper ? hex.toUpperCase() : hex
}

const ENCODINGS: Array<[string, string]> = [
  ['raw', SECRET],
  ['form', new URLSearchParams({ v: SECRET }).toString().slice(2)],
  ['encodeURIComponent', encodeURIComponent(SECRET)],
  ['every byte percent-encoded, lower case', percentEveryByte(SECRET, false)],
  ['every byte percent-encoded, upper case', percentEveryByte(SECRET, true)],
  ['JSON-escaped', JSON.stringify(SECRET).slice(1, -1)],
  ['HTML decimal entities', [...SECRET].map((c) => `&#${c.codePointAt(0) as number};`).join('')],
  ['HTML hex entities', [...SECRET].map((c) => `&#x${(c.codePointAt(0) as number).toString(16)};`).join('')],
  ['hex', Buffer.from(SECRET).toString('hex')],
  ['HEX', Buffer.from(SECRET).toString('hex').toUpperCase()],
  ['base64', Buffer.from(SECRET).toString('base64')],
  ['base64url', Buffer.from(SECRET).toString('base64url')],
  ['inside a Basic header', Buffer.from(`client:${new URLSearchParams({ v: SECRET }).toString().slice(2)}`).toString('base64')]
]

for (const [name, encoded] of ENCODINGS) {
  test(`a secret echoed ${name} is redacted, and the words around it stay`, () => {
    const out = Redactor.of([SECRET]).redact(`invalid_client: got ${encoded} here`)
    assert.ok(!out.includes(encoded), `${name} leaked: ${out}`)
    assert.match(out, /^invalid_client: got .*\[redacted\].* here$/)
  })
}

test('text without the secret is left as it is', () => {
  const text = 'invalid_client: the client is unknown (HTTP 401) Zx9 p+w&d and 5a78'
  assert.equal(Redactor.of([SECRET]).redact(text), text)
})
