import assert from 'node:assert/strict'
import { renameSync, writeFileSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { exampleWithFiles } from './example-helpers.js'
import { ACCESS_TOKEN_TYPE, JWT_TYPE, startExchangeServer, TOKEN_EXCHANGE_GRANT, type ExchangeServer } from './fixtures/token-exchange-server.js'
import { recordingUpstream, startProxy, type TestProxy } from './helpers.js'

// RFC 8693 through config/examples/token-exchange.yaml: a workload token read
// from a file (a Kubernetes projected service-account token) is exchanged for
// the API's token; the file is read again at every exchange.

const CLIENT = { clientId: 'sts-client', clientSecret: 'sts-client-secret-5b1e' }

/** A JWT-looking workload token, different each call. */
function workloadToken (label: string): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256', kid: 'k8s' })}.${part({ sub: 'system:serviceaccount:shop:orders', label, n: Math.random() })}.${Buffer.from(`sig-${label}-${Math.random()}`).toString('base64url')}`
}

interface Setup { proxy: TestProxy, sts: ExchangeServer, upstream: Awaited<ReturnType<typeof recordingUpstream>>, tokenFile: string }

async function fromExample (t: TestContext, subject: string): Promise<Setup> {
  const sts = await startExchangeServer(t, { ...CLIENT, audience: 'orders-api', resource: 'https://orders.example.com/' })
  const upstream = await recordingUpstream(t)
  const example = exampleWithFiles(t, 'token-exchange.yaml', () => `${subject}\n`)
  const tokenFile = example.files['/var/run/secrets/tokens/sts-token'] as string
  const env = { ORDERS_API_URL: upstream.url, STS_TOKEN_URL: sts.tokenUrl, STS_CLIENT_ID: CLIENT.clientId, STS_CLIENT_SECRET: CLIENT.clientSecret }
  const proxy = await startProxy(t, example.config, { env })
  return { proxy, sts, upstream, tokenFile }
}

/** What kubelet does: the new token in a new file, renamed over the old one. */
function rotate (file: string, token: string): void {
  writeFileSync(`${file}.next`, `${token}\n`)
  renameSync(`${file}.next`, file)
}

function assertNothingSecret (text: string, values: string[]): void {
  for (const value of values) {
    assert.ok(!text.includes(value), 'no token or secret in the output')
    for (const part of value.split('.').slice(1)) assert.ok(!text.includes(part), 'no part of a JWT in the output')
  }
}

test('the projected token is exchanged for the API token: grant, subject and its type, audience, resource, scope, client authentication', async (t) => {
  const subject = workloadToken('first')
  const { proxy, sts, upstream } = await fromExample(t, subject)
  sts.subjects.add(subject)

  const res = await fetch(`${proxy.url}/orders/v1/orders?open=1`)
  assert.equal(res.status, 200, await res.clone().text())
  await res.arrayBuffer()
  assert.equal(upstream.requests[0]?.url, '/v1/orders?open=1')
  assert.equal(upstream.requests[0]?.headers.authorization, `Bearer ${sts.issued[0]}`)
  const form = sts.requests[0]
  assert.ok(form !== undefined)
  assert.deepEqual(Object.fromEntries(form), {
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: subject,
    subject_token_type: JWT_TYPE,
    resource: 'https://orders.example.com/',
    scope: 'orders:read',
    audience: 'orders-api'
  })
  assert.equal(sts.requests.length, 1)
  assertNothingSecret(proxy.logs.text(), [subject, sts.issued[0] as string, CLIENT.clientSecret])
})

test('a rotated subject token file is read by the next exchange', async (t) => {
  const first = workloadToken('first')
  const { proxy, sts, upstream, tokenFile } = await fromExample(t, first)
  sts.subjects.add(first)
  assert.equal((await fetch(`${proxy.url}/orders/a`)).status, 200)

  // The old token is no longer accepted: an exchange that sent it again would be refused.
  const second = workloadToken('second')
  rotate(tokenFile, second)
  sts.subjects.clear()
  sts.subjects.add(second)
  await proxy.brokers.get('orders')?.forget()

  const res = await fetch(`${proxy.url}/orders/b`)
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(sts.requests.map((form) => form.get('subject_token')), [first, second])
  assert.equal(upstream.requests[1]?.headers.authorization, `Bearer ${sts.issued[1]}`)
  assertNothingSecret(proxy.logs.text(), [first, second, ...sts.issued])
})

test('a refused subject token is 502 TOKEN_REJECTED, the echoed token removed, a rotated one too', async (t) => {
  const refused = workloadToken('refused')
  const { proxy, sts, upstream, tokenFile } = await fromExample(t, refused)

  const res = await fetch(`${proxy.url}/orders/a`)
  const text = await res.text()
  assert.equal(res.status, 502, text)
  const body = JSON.parse(text) as { error: { code: string, message: string } }
  assert.equal(body.error.code, 'TOKEN_REJECTED')
  assert.match(body.error.message, /invalid_grant: subject_token \[redacted\] is not valid/)

  // A token first seen at the exchange (not at start) is a secret as well.
  const rotated = workloadToken('rotated')
  rotate(tokenFile, rotated)
  await proxy.brokers.get('orders')?.forget()
  const again = await fetch(`${proxy.url}/orders/b`)
  const againText = await again.text()
  assert.equal(again.status, 502, againText)
  assert.equal(sts.requests.at(-1)?.get('subject_token'), rotated)
  assert.match(againText, /subject_token \[redacted\] is not valid/)
  assert.equal(upstream.requests.length, 0)
  assertNothingSecret(text + againText + proxy.logs.text(), [refused, rotated, CLIENT.clientSecret])
})

test('delegation (RFC 8693 §1.1): the actor token goes with its type, and the requested token type', async (t) => {
  const subject = workloadToken('subject')
  const actor = workloadToken('actor')
  const sts = await startExchangeServer(t, { ...CLIENT, actors: new Set([actor]) })
  sts.subjects.add(subject)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      api: {
        upstream: upstream.url,
        auth: { type: 'token_exchange', tokenUrl: sts.tokenUrl, ...CLIENT, subjectToken: subject, actorToken: actor, requestedTokenType: ACCESS_TOKEN_TYPE }
      }
    }
  })
  const res = await fetch(`${proxy.url}/api/x`)
  assert.equal(res.status, 200, await res.clone().text())
  const form = sts.requests[0]
  assert.equal(form?.get('actor_token'), actor)
  assert.equal(form?.get('actor_token_type'), JWT_TYPE)
  assert.equal(form?.get('requested_token_type'), ACCESS_TOKEN_TYPE)
})
