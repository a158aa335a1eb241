import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { PublishError } from '../errors.js'
import { settings, type Config } from './schema.js'

/**
 * Builds the configuration from the config file (APUBI_CONFIG), then the environment, then `overrides`
 * (command-line flags), later ones winning. Nothing else reads process.env.
 * @throws PublishError ERR_CONFIG_INVALID listing every problem at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): Config {
  const file = env['APUBI_CONFIG'] ? readConfigFile(env['APUBI_CONFIG']) : {}
  const problems: string[] = []
  const values: Record<string, unknown> = {}
  for (const key of Object.keys(file)) {
    if (!Object.hasOwn(settings, key)) problems.push(`${key}: not a setting (in the config file)`)
  }
  for (const [key, setting] of Object.entries(settings)) {
    // An empty variable counts as unset, so it does not hide the file's value.
    const given = (v: unknown) => (v === '' ? undefined : v)
    const raw = given(overrides[key]) ?? (setting.env === null ? undefined : given(env[setting.env])) ?? file[key]
    const parsed = setting.schema.safeParse(raw)
    if (parsed.success) {
      if (parsed.data !== undefined) values[key] = parsed.data
    } else problems.push(`${setting.env ?? 'config file'} (${key}): ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`.trim()).join('; ')}`)
  }
  if ((values['soapUser'] === undefined) !== (values['soapPassword'] === undefined)) {
    problems.push('APUBI_SOAP_USER and APUBI_SOAP_PASSWORD: set both to require authentication, or neither')
  }
  if ((values['tlsCert'] === undefined) !== (values['tlsKey'] === undefined)) {
    problems.push('APUBI_TLS_CERT and APUBI_TLS_KEY: set both to serve HTTPS, or neither')
  }
  if (values['tlsClientCa'] !== undefined && values['tlsCert'] === undefined) problems.push('APUBI_TLS_CLIENT_CA: needs APUBI_TLS_CERT and APUBI_TLS_KEY')
  // node:http refuses to start otherwise: the headers are part of the request.
  if ((values['headersTimeoutMs'] as number) > (values['requestTimeoutMs'] as number)) {
    problems.push('APUBI_HEADERS_TIMEOUT_MS: must not be longer than APUBI_REQUEST_TIMEOUT_MS')
  }
  if (problems.length > 0) throw new PublishError('ERR_CONFIG_INVALID', `Invalid configuration:\n  ${problems.join('\n  ')}`)

  const dataDir = resolve(values['dataDir'] as string)
  const fileRoots = ((values['fileRoots'] as string[] | undefined) ?? [dataDir]).map((root) => resolve(root))
  const cdnBase = (values['cdnBase'] as string | undefined) ?? pathToFileURL(`${dataDir}/cdn/`).href
  const host = values['host'] as string
  const listenHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  const publicUrl =
    (values['publicUrl'] as string | undefined) ?? `${values['tlsCert'] ? 'https' : 'http'}://${listenHost}:${values['port'] as number}${values['soapPath'] as string}`
  return Object.freeze({
    ...(values as Omit<Config, 'fileRoots' | 'cdnBase' | 'publicUrl' | 'dataDir' | 'databaseFile' | 'sshKnownHosts' | 's3Region'>),
    dataDir,
    fileRoots: Object.freeze(fileRoots),
    cdnBase: cdnBase.endsWith('/') ? cdnBase : `${cdnBase}/`,
    publicUrl,
    databaseFile: resolve(dataDir, 'apubi.sqlite'),
    sshKnownHosts: resolve((values['sshKnownHosts'] as string | undefined) ?? resolve(dataDir, 'known_hosts')),
    // The standard AWS variable is honoured as the SDK's own chain would.
    s3Region: (values['s3Region'] as string | undefined) ?? env['AWS_REGION'] ?? 'us-east-1',
  })
}

function readConfigFile(path: string): Record<string, unknown> {
  let content: unknown
  try {
    content = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    // JSON.parse quotes the text around the mistake, and the file holds passwords: say only where.
    const position = /position \d+/.exec((e as Error).message)?.[0]
    const why = e instanceof SyntaxError ? `not valid JSON${position ? ` (at ${position})` : ''}` : (e as Error).message
    throw new PublishError('ERR_CONFIG_INVALID', `Cannot read config file ${path}: ${why}`)
  }
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new PublishError('ERR_CONFIG_INVALID', `Config file ${path} must hold a JSON object`)
  }
  return content as Record<string, unknown>
}
