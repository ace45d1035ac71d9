import { signAssertion } from './jwt-assertion.js'
import type { SigningKey } from './keys.js'

/** The parts of a token request that client authentication adds to. */
export interface TokenRequestParts {
  body: Record<string, string>
  headers: Record<string, string>
}

/**
 * One way a client authenticates at a token endpoint (RFC 6749 §2.3): made
 * once with its credentials, it adds them to each request, so a grant never
 * branches on the method (oauth4webapi's `ClientAuth`).
 */
export type ClientAuth = (request: TokenRequestParts, tokenUrl: string) => void | Promise<void>

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** Lifetime of a client assertion (RFC 7523 §3): short, it is used once. */
const CLIENT_ASSERTION_TTL = 60

/** RFC 6749 §2.3.1 HTTP Basic: both parts are form-urlencoded before base64. */
export function clientSecretBasic (clientId: string, clientSecret: string): ClientAuth {
  const header = `Basic ${Buffer.from(`${formPart(clientId)}:${formPart(clientSecret)}`).toString('base64')}`
  return (request) => { request.headers.authorization = header }
}

/** RFC 6749 §2.3.1 credentials in the request body. */
export function clientSecretPost (clientId: string, clientSecret: string): ClientAuth {
  return (request) => {
    request.body.client_id = clientId
    request.body.client_secret = clientSecret
  }
}

/**
 * RFC 7523 §2.2 / OIDC Core §9: a fresh JWT assertion signed with the key,
 * `iss` and `sub` the client, `aud` the token endpoint. An HMAC key makes it
 * client_secret_jwt, a private key private_key_jwt.
 */
export function clientAssertionJwt (clientId: string, key: SigningKey): ClientAuth {
  return async (request, tokenUrl) => {
    request.body.client_id = clientId
    request.body.client_assertion_type = CLIENT_ASSERTION_TYPE
    request.body.client_assertion = await signAssertion(key, { iss: clientId, sub: clientId, aud: tokenUrl }, CLIENT_ASSERTION_TTL)
  }
}

/**
 * RFC 7523 §2.2 with a JWT made elsewhere (a Kubernetes projected
 * service-account token, a SPIFFE JWT-SVID, a CI OIDC token): `read` gives
 * the current one at every request, since its issuer renews it. `client_id`
 * goes along when configured (RFC 7523 §3 lets the assertion's `sub` name the client).
 */
export function clientAssertion (clientId: string | undefined, read: () => string): ClientAuth {
  return (request) => {
    if (clientId !== undefined) request.body.client_id = clientId
    request.body.client_assertion_type = CLIENT_ASSERTION_TYPE
    request.body.client_assertion = read()
  }
}

/**
 * RFC 8705 §2.1 / §2.2 (tls_client_auth, self_signed_tls_client_auth): the
 * client certificate of the TLS connection authenticates the client, so the
 * request itself carries only `client_id` (required by §2). The certificate is
 * the dispatcher's, not this factory's.
 */
export function tlsClientAuth (clientId: string): ClientAuth {
  return (request) => { request.body.client_id = clientId }
}

/** A public client (RFC 6749 §2.1): only its id, when it has one, in the body. */
export function publicClient (clientId: string | undefined): ClientAuth {
  return (request) => {
    if (clientId !== undefined) request.body.client_id = clientId
  }
}

function formPart (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}
