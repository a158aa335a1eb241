import { readFileSync } from 'node:fs'
import { PublishError } from '../errors.js'
import { escapeXml } from './xml.js'

/** What the HTTP edge serves: `GET <endpoint>?wsdl` → `wsdl`, `GET <endpoint>?xsd=<name>` → `schemas.get(name)`. */
export interface ServiceDescription {
  readonly wsdl: string
  readonly schemas: ReadonlyMap<string, string>
}

/** The schema's file name, which is also its `?xsd=` name. */
const SCHEMA_NAME = 'apubi.xsd'
/** Both strings appear exactly once in apubi.wsdl; replacing them is all the templating there is. */
const ADDRESS_PLACEHOLDER = 'location="http://apubi.invalid/apubi"'
const SCHEMA_IMPORT = `schemaLocation="${SCHEMA_NAME}"`

interface Files {
  readonly wsdl: string
  readonly xsd: string
}

// The files never change while the process runs: read them on first use, not at import time, so
// that a missing dist/soap/wsdl shows up as an error of the first request rather than of the import.
let files: Files | undefined

function readFiles(): Files {
  try {
    files ??= {
      wsdl: readFileSync(new URL('./wsdl/apubi.wsdl', import.meta.url), 'utf8'),
      xsd: readFileSync(new URL(`./wsdl/${SCHEMA_NAME}`, import.meta.url), 'utf8'),
    }
  } catch (e) {
    // dist/ is built by `npm run build`, whose copy-assets step puts the files beside this module.
    throw new PublishError('ERR_INTERNAL', 'The WSDL and XSD files are missing from soap/wsdl/', { cause: e })
  }
  return files
}

function replaceOnce(text: string, search: string, replacement: string): string {
  const parts = text.split(search)
  if (parts.length !== 2) {
    throw new PublishError('ERR_INTERNAL', `apubi.wsdl must contain ${search} exactly once`)
  }
  return parts.join(replacement)
}

/**
 * The WSDL and its schema as served, with `endpointUrl` as the port's address and the schema imported
 * from `${endpointUrl}?xsd=apubi.xsd`, so that a client fetching only the WSDL URL finds everything.
 * Throws PublishError ERR_CONFIG_INVALID when `endpointUrl` is not an absolute http(s) URL without a
 * query or fragment, and ERR_INTERNAL when the packaged files are missing or were edited out of shape.
 */
export function loadServiceDescription(endpointUrl: string): ServiceDescription {
  if (!/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/i.test(endpointUrl) || !URL.canParse(endpointUrl)) {
    throw new PublishError('ERR_CONFIG_INVALID', 'The endpoint URL must be an absolute http(s) URL without query')
  }
  const { wsdl, xsd } = readFiles()
  const address = escapeXml(endpointUrl)
  const served = replaceOnce(
    replaceOnce(wsdl, ADDRESS_PLACEHOLDER, `location="${address}"`),
    SCHEMA_IMPORT,
    `schemaLocation="${address}?xsd=${SCHEMA_NAME}"`,
  )
  return { wsdl: served, schemas: new Map([[SCHEMA_NAME, xsd]]) }
}
