import type { Scheme } from '../backends/index.js'
import { inRange, parseIpRange, type IpAddress, type IpRange } from './address.js'

// The allow and deny rules for network locations, and the order in which they decide. `file://` has
// its own rule (its roots: file-roots.ts).

export type NetworkScheme = Exclude<Scheme, 'file'>

/** A rule as the configuration writes it: every condition it sets must hold; one it leaves out holds always. */
export interface LocationRule {
  readonly schemes?: readonly NetworkScheme[]
  /** Names (`cdn.example.com`), suffixes (`*.example.com`), addresses and CIDR ranges. */
  readonly hosts?: readonly string[]
  /** Ports, or ranges written `"8000-8099"`. */
  readonly ports?: readonly (number | string)[]
  /** Path prefixes, `/`-rooted; `/vod` holds for `/vod` and below, not for `/vodka`. */
  readonly paths?: readonly string[]
}

export interface RuleSources {
  /** The config file's `locationRules`. */
  readonly rules?: { readonly allow?: readonly LocationRule[]; readonly deny?: readonly LocationRule[] }
  /** APUBI_ALLOWED_HOSTS: each entry an allow rule of its own. */
  readonly allowedHosts?: readonly string[]
  /** APUBI_DENIED_HOSTS: each entry a deny rule of its own. */
  readonly deniedHosts?: readonly string[]
}

/**
 * What a check knows of a location. A field left undefined is not known at this check: the address
 * before a name is resolved, the path when a connection opens (one connection serves many paths).
 */
export interface Subject {
  readonly scheme: NetworkScheme
  /** The host name, lower case, without a trailing dot; undefined for an address literal. For s3: the bucket. */
  readonly name?: string
  /** The address spelled by the URL, or one its name resolved to. */
  readonly address?: IpAddress
  readonly port?: number
  /** `/`-rooted, decoded, dot segments resolved; a directory ends with `/`. */
  readonly path?: string
}

export type Verdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string }

/**
 * Denied unless an allow rule names the address or its range: where clouds serve instance metadata
 * (credentials included), link-local neighbours, and the "this host" addresses, which Linux connects
 * to the local machine (so that a deny of 127.0.0.0/8 cannot be walked around with 0.0.0.0).
 */
export const BUILT_IN_DENIED: ReadonlyArray<readonly [range: string, why: string]> = [
  ['169.254.0.0/16', 'IPv4 link-local, where clouds serve instance metadata'],
  ['fe80::/10', 'IPv6 link-local'],
  ['fd00:ec2::254', 'AWS instance metadata over IPv6'],
  ['fd20:ce::254', 'Google Cloud instance metadata over IPv6'],
  ['100.100.100.200', 'Alibaba Cloud instance metadata'],
  ['0.0.0.0/8', '"this host", which reaches the local machine'],
  ['::', 'the unspecified address, which reaches the local machine'],
]

/** A condition's outcome where a part of the location may not be known yet. */
type Match = 'yes' | 'no' | 'unknown'

interface Rule {
  /** Where the rule comes from, as messages name it: `APUBI_DENIED_HOSTS entry 10.0.0.0/8`, `locationRules.allow[2]`. */
  readonly label: string
  /** The setting it comes from. */
  readonly setting: 'APUBI_ALLOWED_HOSTS' | 'APUBI_DENIED_HOSTS' | 'locationRules.allow' | 'locationRules.deny'
  readonly schemes?: ReadonlySet<string>
  /** The `hosts` entries, names (and `*.` suffixes) apart from addresses and ranges. */
  readonly hosts?: { readonly names: readonly string[]; readonly ranges: readonly IpRange[] }
  readonly ports?: ReadonlyArray<readonly [number, number]>
  readonly paths?: readonly string[]
}

/**
 * The rules in force, judging in this order (the first that applies decides):
 * 1. a deny rule that holds → denied;
 * 2. an address in BUILT_IN_DENIED → denied, unless an allow rule holds that names the address or
 *    its range (a name allowed does not open what the name resolves to);
 * 3. allow rules for the scheme exist and none holds → denied (an allow list admits nothing else);
 * 4. allowed.
 * A condition on what this check does not know counts against a deny rule and for an allow rule:
 * the check that knows it decides (the request, with the address; the connection, with the address
 * it connects to; the URL, with the path).
 */
export function compileRules(sources: RuleSources): { judge(subject: Subject): Verdict } {
  const deny = [
    ...(sources.deniedHosts ?? []).map((host) => compile({ hosts: [host] }, 'APUBI_DENIED_HOSTS', `entry ${host}`)),
    ...(sources.rules?.deny ?? []).map((rule, i) => compile(rule, 'locationRules.deny', `[${i}]`)),
  ]
  const allow = [
    ...(sources.allowedHosts ?? []).map((host) => compile({ hosts: [host] }, 'APUBI_ALLOWED_HOSTS', `entry ${host}`)),
    ...(sources.rules?.allow ?? []).map((rule, i) => compile(rule, 'locationRules.allow', `[${i}]`)),
  ]
  const builtIn = BUILT_IN_DENIED.map(([range, why]) => ({ range: parseIpRange(range), why }))
  return {
    judge(subject: Subject): Verdict {
      const denying = deny.find((rule) => holds(rule, subject) === 'yes')
      if (denying) return { allowed: false, reason: `denied by ${denying.label}` }
      const { address } = subject
      const reserved = address && builtIn.find(({ range }) => inRange(address, range))
      if (reserved && !allow.some((rule) => holds(rule, subject, true) !== 'no')) {
        return { allowed: false, reason: `${address.text} is in ${reserved.range.text} (${reserved.why}), denied unless an allow rule names it` }
      }
      const forScheme = allow.filter((rule) => !rule.schemes || rule.schemes.has(subject.scheme))
      if (forScheme.length > 0 && forScheme.every((rule) => holds(rule, subject) === 'no')) {
        return { allowed: false, reason: `not on the allow list (${[...new Set(forScheme.map((r) => r.setting))].join(', ')})` }
      }
      return { allowed: true }
    },
  }
}

function compile(rule: LocationRule, setting: Rule['setting'], which: string): Rule {
  const hosts = rule.hosts?.map((h) => h.toLowerCase())
  const isRange = (h: string): boolean => /^[\d.]+(\/\d+)?$/.test(h) || h.includes(':')
  return {
    label: setting.startsWith('APUBI_') ? `${setting} ${which}` : `${setting}${which}`,
    setting,
    ...(rule.schemes && { schemes: new Set(rule.schemes) }),
    ...(hosts && { hosts: { names: hosts.filter((h) => !isRange(h)).map(withoutTrailingDot), ranges: hosts.filter(isRange).map(parseIpRange) } }),
    ...(rule.ports && { ports: rule.ports.map(portRange) }),
    ...(rule.paths && { paths: rule.paths }),
  }
}

function portRange(port: number | string): readonly [number, number] {
  if (typeof port === 'number') return [port, port]
  const [low = '', high = low] = port.split('-')
  return [Number(low), Number(high)]
}

export function withoutTrailingDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name
}

/**
 * Whether every condition of `rule` holds for `subject`. `byAddress`: the host condition holds only
 * through an address or range entry, as lifting the built-in deny demands.
 */
function holds(rule: Rule, subject: Subject, byAddress = false): Match {
  if (rule.schemes && !rule.schemes.has(subject.scheme)) return 'no'
  return all([hostMatch(rule, subject, byAddress), portMatch(rule, subject.port), pathMatch(rule, subject.path)])
}

function all(matches: Match[]): Match {
  if (matches.includes('no')) return 'no'
  return matches.includes('unknown') ? 'unknown' : 'yes'
}

function hostMatch({ hosts }: Rule, { name, address }: Subject, byAddress: boolean): Match {
  if (!hosts) return byAddress ? 'no' : 'yes'
  if (!byAddress && name !== undefined && hosts.names.some((pattern) => nameMatches(pattern, name))) return 'yes'
  if (address) return hosts.ranges.some((range) => inRange(address, range)) ? 'yes' : 'no'
  // A name not resolved yet may resolve into one of the ranges.
  return name !== undefined && hosts.ranges.length > 0 ? 'unknown' : 'no'
}

/** `*.example.com` holds for every name below example.com, not for example.com itself. */
function nameMatches(pattern: string, name: string): boolean {
  return pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern
}

function portMatch(rule: Rule, port: number | undefined): Match {
  if (!rule.ports) return 'yes'
  if (port === undefined) return 'unknown'
  return rule.ports.some(([low, high]) => port >= low && port <= high) ? 'yes' : 'no'
}

function pathMatch(rule: Rule, path: string | undefined): Match {
  if (!rule.paths) return 'yes'
  if (path === undefined) return 'unknown'
  return rule.paths.some((prefix) => path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)) ? 'yes' : 'no'
}
