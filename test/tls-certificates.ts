import { execFileSync } from 'node:child_process'
import { X509Certificate, createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Throwaway certificates made with the openssl CLI at test time: a CA, a
 * server certificate for 127.0.0.1 signed by it, client certificates signed
 * by it, and a self-signed client certificate. EC P-256 keys: an RSA key
 * takes a second or more to generate on a busy machine.
 */

export interface KeyPair {
  cert: string
  key: string
}

export interface TestPki {
  ca: KeyPair
  /** For 127.0.0.1 (IP SAN), signed by `ca`. */
  server: KeyPair
  /** CN=bearer-proxy-client, signed by `ca`. */
  client: KeyPair
  /** CN=someone-else, signed by `ca`: a valid certificate of another client. */
  otherClient: KeyPair
  /** CN=self-signed-client, its own issuer. */
  selfSigned: KeyPair
  /** A second CA, unrelated to `ca`, with a server certificate for 127.0.0.1. */
  otherServer: KeyPair & { ca: string }
}

const DAYS = '2'

function openssl (dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 })
}

function newCa (dir: string, name: string): KeyPair {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-subj', `/CN=${name}`, '-days', DAYS, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return read(dir, name)
}

function signed (dir: string, ca: string, name: string, cn: string, extensions: string[]): KeyPair {
  openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  writeFileSync(join(dir, `${name}.ext`), extensions.join('\n') + '\n')
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', DAYS, '-extfile', `${name}.ext`])
  return read(dir, name)
}

function read (dir: string, name: string): KeyPair {
  return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') }
}

let made: TestPki | undefined

/** The certificates, made once per test file. */
export function testPki (): TestPki {
  if (made !== undefined) return made
  const dir = mkdtempSync(join(tmpdir(), 'bearer-proxy-pki-'))
  try {
    const ca = newCa(dir, 'test-ca')
    const serverExt = ['basicConstraints=CA:FALSE', 'subjectAltName=IP:127.0.0.1', 'extendedKeyUsage=serverAuth']
    const clientExt = ['basicConstraints=CA:FALSE', 'extendedKeyUsage=clientAuth']
    const server = signed(dir, 'test-ca', 'server', '127.0.0.1', serverExt)
    const client = signed(dir, 'test-ca', 'client', 'bearer-proxy-client', clientExt)
    const otherClient = signed(dir, 'test-ca', 'other-client', 'someone-else', clientExt)
    openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'self-signed.key', '-out', 'self-signed.crt',
      '-subj', '/CN=self-signed-client', '-days', DAYS, '-addext', 'extendedKeyUsage=clientAuth'])
    const selfSigned = read(dir, 'self-signed')
    const otherCa = newCa(dir, 'other-ca')
    const otherServer = { ...signed(dir, 'other-ca', 'other-server', '127.0.0.1', serverExt), ca: otherCa.cert }
    made = { ca, server, client, otherClient, selfSigned, otherServer }
    return made
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of the certificate's DER. */
export function certificateThumbprint (pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url')
}
