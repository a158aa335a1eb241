// tsc copies no non-TypeScript files: the WSDL and XSD are served from dist/ too.
import { cpSync } from 'node:fs'
cpSync('src/soap/wsdl', 'dist/soap/wsdl', { recursive: true, filter: (p) => !p.endsWith('.ts') })
