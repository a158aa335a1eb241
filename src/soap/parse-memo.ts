import type { SoapRequest } from './parse.js'

/** Longest request text remembered: a GetTaskStatus is a few hundred characters. */
const MAX_REMEMBERED_LENGTH = 2_048

/**
 * The WFM polls a task with the same GetTaskStatus text until it ends, so each text is parsed once.
 * Parsing is a pure function of the text: a remembered answer is exactly the parse it replaces. Only
 * successful GetTaskStatus parses of short texts are kept, at most `capacity`, oldest dropped first;
 * the status itself is read afresh for every request.
 */
export function rememberStatusParses(parse: (xml: string) => SoapRequest, capacity = 1_024): (xml: string) => SoapRequest {
  const remembered = new Map<string, SoapRequest>()
  return (xml) => {
    const known = remembered.get(xml)
    if (known) return known
    const request = parse(xml)
    if (request.operation === 'GetTaskStatus' && xml.length <= MAX_REMEMBERED_LENGTH) {
      if (remembered.size >= capacity) remembered.delete(remembered.keys().next().value!)
      remembered.set(xml, Object.freeze(request))
    }
    return request
  }
}
