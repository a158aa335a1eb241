import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { PublishError } from '../errors.js'

/** The PEM files the endpoint's TLS is made of; they are read at start and again on every reload. */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
  /** CAs of the client certificates we accept; absent: no client certificate is asked for. */
  readonly clientCa?: string
}

/**
 * The files' contents, checked to make a working context (the key matches the certificate, the
 * PEM parses). Paths and library reasons are named; file contents never are.
 * @throws PublishError ERR_CONFIG_INVALID
 */
export function readTlsFiles(files: TlsFiles): SecureContextOptions & { cert: Buffer } {
  const read = (setting: string, path: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (e) {
      throw new PublishError('ERR_CONFIG_INVALID', `Cannot read ${setting} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
  }
  const options = {
    cert: read('APUBI_TLS_CERT', files.cert),
    key: read('APUBI_TLS_KEY', files.key),
    ...(files.clientCa !== undefined && { ca: read('APUBI_TLS_CLIENT_CA', files.clientCa) }),
  }
  try {
    createSecureContext(options)
  } catch (e) {
    throw new PublishError('ERR_CONFIG_INVALID', `The TLS certificate, key or client CA cannot be used: ${(e as Error).message}`)
  }
  return options
}

/** What an operator checks after a (re)load: which certificate is served, and until when. */
export function describeCertificate(pem: Buffer): { subject: string; fingerprint256: string; validTo: string } {
  const certificate = new X509Certificate(pem)
  return { subject: certificate.subject, fingerprint256: certificate.fingerprint256, validTo: certificate.validTo }
}

/** When the (first) certificate of the PEM stops being valid, epoch ms: for the expiry metric. */
export function certificateExpiry(pem: Buffer): number {
  return Date.parse(new X509Certificate(pem).validTo)
}
