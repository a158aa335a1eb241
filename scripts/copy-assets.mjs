// tsc copies no non-TypeScript files: the WSDL and XSD are served from dist/ too.
import { cpSync } from 'node:fs'
cpSync('src/soap/wsdl', 'dist/soap/wsdl', { recursive: true, filter: (p) => !p.endsWith('.ts') })
// The dashboard page, its script and the admin API's OpenAPI description, served by the admin edge.
cpSync('src/admin/assets', 'dist/admin/assets', { recursive: true })
