import { isIPv6 } from 'node:net'

// IP addresses as the location policy reads them: every spelling a URL host or a resolver may use,
// brought to one form before any rule sees it.

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
export interface IpAddress {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
  /** Dotted IPv4, or IPv6 with its longest run of zero groups shortened. */
  readonly text: string
}

/** The addresses whose first `prefix` bits are those of `bytes` (an address alone: all its bits). */
export interface IpRange {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
  readonly prefix: number
  /** As the configuration wrote it. */
  readonly text: string
}

/**
 * The address a host spells, or undefined for a host name. IPv4 is read as inet_aton and the URL
 * standard read it (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`, a trailing dot), because a
 * resolver given such a "name" answers with that address; IPv6 with or without brackets, a zone
 * dropped. An IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) is the IPv4 address: Linux
 * connects to it over IPv4.
 */
export function parseIp(host: string): IpAddress | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  const v4 = parseIPv4(bare)
  if (v4) return address(v4)
  const v6 = parseIPv6(bare)
  if (!v6) return undefined
  return address(isMappedIPv4(v6) ? v6.subarray(12) : v6)
}

/**
 * `10.0.0.0/8`, `fe80::/10`, or one address (`169.254.169.254`, `[::1]`) as a range of one.
 * @throws Error for text that is neither (the configuration schema lets none through).
 */
export function parseIpRange(text: string): IpRange {
  const [ipText = '', prefixText, extra] = text.split('/')
  const ip = parseIp(ipText)
  if (!ip || extra !== undefined || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))) {
    throw new Error(`not an IP address or CIDR range: ${text}`)
  }
  const bits = ip.bytes.length * 8
  // A mapped range (`::ffff:169.254.0.0/112`) is read as IPv4, its prefix counted within the IPv4 part.
  const mapped = ip.family === 4 && ipText.includes(':')
  const prefix = prefixText === undefined ? bits : Math.max(0, Number(prefixText) - (mapped ? 96 : 0))
  if (prefix > bits) throw new Error(`not an IP address or CIDR range: ${text}`)
  return { family: ip.family, bytes: ip.bytes, prefix, text }
}

/** Whether `ip` is in `range`. */
export function inRange(ip: IpAddress, range: IpRange): boolean {
  if (ip.family !== range.family) return false
  const whole = range.prefix >> 3
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== range.bytes[i]) return false
  const rest = range.prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return ((ip.bytes[whole]! ^ range.bytes[whole]!) & mask) === 0
}

function address(bytes: Uint8Array): IpAddress {
  return { family: bytes.length === 4 ? 4 : 6, bytes, text: bytes.length === 4 ? bytes.join('.') : formatIPv6(bytes) }
}

/** One part of an inet_aton address: hexadecimal after 0x, octal after a leading 0, else decimal. */
function parseIPv4Part(part: string): number | undefined {
  if (/^0x[0-9a-f]*$/i.test(part)) return part.length === 2 ? 0 : parseInt(part.slice(2), 16)
  if (/^0[0-7]+$/.test(part)) return parseInt(part, 8)
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number(part)
  return undefined
}

/** One to four parts; the last fills the bytes the others leave (`127.1` is 127.0.0.1). */
function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.')
  if (parts.length > 1 && parts.at(-1) === '') parts.pop()
  if (parts.length > 4) return undefined
  const numbers: number[] = []
  for (const part of parts) {
    const n = parseIPv4Part(part)
    if (n === undefined) return undefined
    numbers.push(n)
  }
  const last = numbers.pop()!
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return undefined
  let value = last
  numbers.forEach((n, i) => (value += n * 256 ** (3 - i)))
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff)
}

function parseIPv6(text: string): Uint8Array | undefined {
  const zoneless = text.split('%')[0]!
  if (!isIPv6(zoneless)) return undefined
  const groups = (side: string): number[] =>
    side === ''
      ? []
      : side.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)]
          const v4 = parseIPv4(g)!
          return [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!]
        })
  const [head = '', tail] = zoneless.split('::')
  const left = groups(head)
  const right = tail === undefined ? [] : groups(tail)
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
  const bytes = new Uint8Array(16)
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8
    bytes[2 * i + 1] = g & 0xff
  })
  return bytes
}

/** `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2). */
function isMappedIPv4(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
}

/** RFC 5952: lower case, the longest run of two or more zero groups shortened to `::`. */
function formatIPv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!)
  let best = { start: -1, length: 1 }
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > best.length) best = { start: i, length: j - i }
    i = j === i ? i + 1 : j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best.start === -1) return hex.join(':')
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`
}
