import { createFileBackend } from './file.js'
import { createFtpBackend } from './ftp.js'
import type { BackendFactory, Scheme } from './types.js'

/** Which factory serves each scheme. A scheme not listed here is refused at request time. */
export const backendFactories: Readonly<Record<Scheme, BackendFactory>> = {
  file: createFileBackend,
  ftp: createFtpBackend,
}

export function isScheme(s: string): s is Scheme {
  return Object.hasOwn(backendFactories, s)
}
