/** How much of one client value a fault or log line repeats: enough to recognise it, never 60 KB. */
export const MAX_ECHOED_CHARS = 256

/** `value` as a fault or log line may echo it: at most `max` characters, marked where it was cut. */
export function clip(value: string, max = MAX_ECHOED_CHARS): string {
  return value.length <= max ? value : `${value.slice(0, max)}… (cut, ${value.length} characters in all)`
}
