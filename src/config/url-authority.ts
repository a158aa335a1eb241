/**
 * Whether a URL setting that may carry a password reads the same to every parser. A password with
 * an unencoded `@`, `/`, `?` or `#` splits the URL elsewhere than meant: one parser takes part of the
 * password for the host (and then prints it in `getaddrinfo ENOTFOUND <rest of the password>`), another
 * for the path. Such a URL is refused before anything connects, and its text is never shown.
 */
export function unambiguousAuthority(url: string): boolean {
  const afterScheme = /^[a-z][a-z0-9+.-]*:\/\/(.*)$/is.exec(url)?.[1]
  if (afterScheme === undefined) return false
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return false
  }
  // The authority as a strict reader sees it: up to the first `/`, `?` or `#`. Exactly one `@` may
  // separate the user information from the host, and none may appear anywhere after it.
  const authority = /^[^/?#]*/.exec(afterScheme)![0]
  const ats = (afterScheme.match(/@/g) ?? []).length
  const userinfo = authority.includes('@')
  if (ats !== (userinfo ? 1 : 0)) return false
  // What every parser then agrees on: the host named after the `@` is the host the URL parser found.
  const host = userinfo ? authority.slice(authority.indexOf('@') + 1) : authority
  return host.replace(/:\d*$/, '').toLowerCase() === parsed.hostname.toLowerCase() || parsed.host === host.toLowerCase()
}

/** The advice of a refusal; the value itself is never repeated. */
export const PERCENT_ENCODE_HELP =
  'does not parse as scheme://user:password@host:port/path (the value is not shown): percent-encode @ : / ? # % in the user name and password (@ as %40, : as %3A, / as %2F, # as %23, % as %25)'
