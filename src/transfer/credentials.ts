import { readFileSync } from 'node:fs'
import type { Endpoint } from '../backends/index.js'
import { PublishError } from '../errors.js'

export interface HostCredentials {
  /** `scheme://host[:port]` */
  readonly url: string
  readonly user: string
  readonly password?: string
  readonly privateKeyFile?: string
}

/**
 * Fills in credentials the server holds, so the WFM can send plain URLs or relative paths.
 * Credentials embedded in a URL win. `defaultPrivateKeyFile` serves SFTP logins with no password.
 * @throws PublishError ERR_CONFIG_INVALID when a key file cannot be read (at start-up).
 */
export function createCredentials(entries: readonly HostCredentials[], defaultPrivateKeyFile?: string) {
  const readKey = (file: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch (e) {
      throw new PublishError('ERR_CONFIG_INVALID', `Cannot read private key file ${file}: ${(e as Error).message}`)
    }
  }
  const byOrigin = new Map(
    entries.map((entry) => {
      const url = new URL(entry.url)
      const key = `${url.protocol}//${url.hostname}${url.port ? `:${url.port}` : ''}`
      return [key, { ...entry, privateKey: entry.privateKeyFile ? readKey(entry.privateKeyFile) : undefined }] as const
    }),
  )
  const defaultKey = defaultPrivateKeyFile ? readKey(defaultPrivateKeyFile) : undefined
  return (endpoint: Endpoint): Endpoint => {
    if (endpoint.scheme === 'file' || endpoint.password !== undefined) return endpoint
    const held = byOrigin.get(`${endpoint.scheme}://${endpoint.host}:${endpoint.port}`) ?? byOrigin.get(`${endpoint.scheme}://${endpoint.host}`)
    const user = endpoint.user ?? held?.user
    const password = endpoint.user === undefined || endpoint.user === held?.user ? held?.password : undefined
    const privateKey = held?.privateKey ?? (endpoint.scheme === 'sftp' ? defaultKey : undefined)
    return { ...endpoint, ...(user !== undefined && { user }), ...(password !== undefined && { password }), ...(privateKey !== undefined && { privateKey }) }
  }
}

export type CredentialFiller = ReturnType<typeof createCredentials>
