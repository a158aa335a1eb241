import type { LookupAddress, LookupOptions } from 'node:dns'
import type { LookupFunction } from 'node:net'
import type { BackendContext, CheckedAddress, ConnectTarget } from './types.js'

// Resolving a host once, through the location policy, and connecting to the address it checked.

/**
 * The addresses to connect to for `target`, each allowed by the policy. Without a policy (a backend
 * tested alone) the host as given, for the socket to resolve.
 * @throws PublishError ERR_POLICY_DENIED; the resolver's error when the name does not resolve.
 */
export async function checkedAddresses(context: BackendContext, target: ConnectTarget): Promise<CheckedAddress[]> {
  if (context.guard) return context.guard.addressesFor(target)
  return [{ address: unbracketed(target.host), family: target.host.includes(':') ? 6 : 4 }]
}

/** The first address to connect to for `target` (FTP and SFTP connect to one). */
export async function checkedAddress(context: BackendContext, target: ConnectTarget): Promise<string> {
  const [first] = await checkedAddresses(context, target)
  return first!.address
}

/**
 * A `lookup` for `net.connect`, `http.request` or an Agent that resolves through the policy, so the
 * socket connects to an address it allowed. Undefined without a policy: the default lookup.
 * Sockets skip `lookup` for an address literal: the URL's own check judges those.
 */
export function checkedLookup(context: Pick<BackendContext, 'guard'>, target: Omit<ConnectTarget, 'host'>): LookupFunction | undefined {
  const { guard } = context
  if (!guard) return undefined
  return (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    guard.addressesFor({ ...target, host: hostname }).then(
      (addresses) => {
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family
        const wanted = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses
        const first = wanted[0]
        if (!first) return callback(Object.assign(new Error(`${hostname} has no IPv${family} address`), { code: 'ENOTFOUND' }), '')
        if (options.all) callback(null, wanted)
        else callback(null, first.address, first.family)
      },
      (e: NodeJS.ErrnoException) => callback(e, ''),
    )
  }
}

/** An IPv6 host as sockets take it: without the brackets a URL writes around it. */
export function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}
