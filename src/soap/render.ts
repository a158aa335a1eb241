import { APUBI_NS, SOAP_ENV_NS, escapeXml } from './xml.js'

/** The three answers the WFM understands: shaped like the vendor samples, but well-formed and valid. */
export type SoapResponse =
  | { operation: 'LoadAsset' | 'PurgeAsset'; taskId: string }
  | { operation: 'GetTaskStatus'; status: TaskStatus; destinationAsset?: string }

export type TaskStatus = 'SUCCESS' | 'FAILED' | 'IN_PROGRESS'

/** Wraps body content in the envelope the vendor samples use (`soapenv`, `ns`, empty Header). */
export function envelope(body: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV_NS}" xmlns:ns="${APUBI_NS}">` +
    `<soapenv:Header/><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>\n`
  )
}

function element(name: string, text: string): string {
  return `<ns:${name}>${escapeXml(text)}</ns:${name}>`
}

export function renderResponse(response: SoapResponse): string {
  const name = `${response.operation}Response`
  const content =
    response.operation === 'GetTaskStatus'
      ? element('Status', response.status) +
        (response.destinationAsset === undefined ? '' : element('DestinationAsset', response.destinationAsset))
      : element('TaskId', response.taskId)
  return envelope(`<ns:${name}>${content}</ns:${name}>`)
}

/** GetTaskStatus answers remembered per status, each a few hundred bytes. */
const REMEMBERED_ANSWERS = 1_024

/**
 * The answer to `response` as bytes, GetTaskStatus answers remembered: the WFM polls a task until
 * it ends, and each poll is answered IN_PROGRESS, FAILED, or SUCCESS with the task's destination,
 * the same bytes every time. The oldest remembered is dropped first.
 */
export function rememberStatusAnswers(): (response: SoapResponse) => Buffer {
  const byStatus = new Map<TaskStatus, Map<string | undefined, Buffer>>()
  return (response) => {
    if (response.operation !== 'GetTaskStatus') return Buffer.from(renderResponse(response))
    let remembered = byStatus.get(response.status)
    if (!remembered) byStatus.set(response.status, (remembered = new Map()))
    let answer = remembered.get(response.destinationAsset)
    if (!answer) {
      if (remembered.size >= REMEMBERED_ANSWERS) remembered.delete(remembered.keys().next().value)
      remembered.set(response.destinationAsset, (answer = Buffer.from(renderResponse(response))))
    }
    return answer
  }
}
