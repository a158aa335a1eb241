import { randomUUID } from 'node:crypto'
import { redact } from '../observability/index.js'
import { APUBI_NS, escapeXml } from '../soap/index.js'
import { parseXml, readAnswer, type SoapAnswer } from './answer.js'
import { CHECKS, type Basis, type CheckId } from './catalog.js'
import { Endpoint, WSDL_SOAP_ACTION, type Exchange } from './endpoint.js'

export type Outcome = 'pass' | 'fail' | 'warn' | 'skip'

export interface CheckResult {
  readonly id: CheckId
  readonly title: string
  readonly basis: Basis
  readonly outcome: Outcome
  /** What the server answered: status, fault text, state; credentials redacted. */
  readonly evidence: string
  readonly ms: number
}

/** A test asset the operator names: where to read it, and where the server should put it. */
export interface Asset {
  readonly source: string
  readonly destination: string
}

export interface CheckPlan {
  /** With it, the lifecycle checks: load, resubmission, purge, purge again. Without, nothing is written. */
  readonly file?: Asset
  readonly directory?: Asset
  readonly hls?: Asset
  readonly intervalMs: number
  /** How long a task may stay IN_PROGRESS before `*.load` / `*.purge` fail. */
  readonly timeoutMs: number
}

const STATES = new Set(['SUCCESS', 'FAILED', 'IN_PROGRESS'])
// A table line stays readable; a longer fault text (an echoed request, a stack) is cut, marked with …
const EVIDENCE_CHARS = 300

/**
 * Runs the conformance checks against one endpoint, in order; `onResult` sees each as it is decided.
 * Never throws for what the server answers: an unreachable server fails the checks that needed it.
 */
export async function runChecks(endpoint: Endpoint, plan: CheckPlan, onResult?: (r: CheckResult) => void): Promise<CheckResult[]> {
  const results: CheckResult[] = []
  let started = performance.now()
  const record = (id: CheckId, outcome: Outcome, evidence: string) => {
    const result = { id, ...CHECKS[id], outcome, evidence: clip(redact(evidence)), ms: Math.round(performance.now() - started) }
    results.push(result)
    onResult?.(result)
    started = performance.now()
  }
  await readOnlyChecks(endpoint, record)
  if (plan.file) await fileLifecycle(endpoint, plan.file, plan, record)
  if (plan.directory) await packageLifecycle(endpoint, plan.directory, 'directory', plan, record)
  if (plan.hls) await packageLifecycle(endpoint, plan.hls, 'hls', plan, record)
  return results
}

type Recorder = (id: CheckId, outcome: Outcome, evidence: string) => void

/** The vendor's GetTaskStatus sample, byte for byte but for the TaskId (seed-GetTaskStatus.txt). */
function vendorSample(endpoint: Endpoint, taskId: string): string {
  if (endpoint.options.credentials && endpoint.options.credentials.scheme !== 'basic') {
    // A UsernameToken needs a Header, which the sample has not: the same shape with one.
    return endpoint.envelope('GetTaskStatus', `\n            <TaskId>${escapeXml(taskId)}</TaskId>\n        `)
  }
  return (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">\n    <soap:Body>\n' +
    '        <GetTaskStatus xmlns="wfm:APUBI/v1/schemas" xmlns:ns2="wfm:/APUBI/v1/schemas">\n' +
    `            <TaskId>${escapeXml(taskId)}</TaskId>\n        </GetTaskStatus>\n    </soap:Body>\n</soap:Envelope>\n`
  )
}

async function readOnlyChecks(endpoint: Endpoint, record: Recorder): Promise<void> {
  const wsdl = await endpoint.get('wsdl')
  const parsed = parseXml(wsdl.body)
  const wsdlOk = wsdl.status === 200 && parsed.ok
  record('wsdl.served', wsdlOk ? 'pass' : 'fail', wsdl.error ? `no answer: ${wsdl.error}` : `HTTP ${wsdl.status}, ${parsed.ok ? 'well-formed XML' : `not well-formed: ${parsed.error}`}`)
  if (wsdlOk) {
    const declared = new Set(parsed.elements.filter((e) => e.local === 'operation' && e.ancestors.includes('portType')).map((e) => e.attributes['name']))
    const missing = ['LoadAsset', 'PurgeAsset', 'GetTaskStatus'].filter((op) => !declared.has(op))
    record('wsdl.operations', missing.length === 0 ? 'pass' : 'fail', missing.length === 0 ? `portType operations: ${[...declared].join(', ')}` : `missing from the portType: ${missing.join(', ')}`)
  } else {
    record('wsdl.operations', 'skip', 'no WSDL to read')
  }

  const unknownId = `apubi-check-${randomUUID()}`
  const baseline = await endpoint.post(vendorSample(endpoint, unknownId), { SOAPAction: WSDL_SOAP_ACTION })
  const answer = readAnswer(baseline.body)
  const shown = describe(baseline, answer)
  const loginRefused = baseline.status === 401 || baseline.status === 403
  if (loginRefused) {
    // Refused before the server looked at the request: nothing below would say anything about it.
    for (const id of ['unknown-task.http-status', 'unknown-task.fault', 'unknown-task.exceptionws', 'unknown-task.wording'] as const) record(id, 'fail', `${shown}: our credentials were refused`)
  } else {
    recordUnknownTask(answer, shown, baseline.status, record)
  }
  const refused = async (id: CheckId, body: string) => {
    const exchange = await endpoint.post(body, { SOAPAction: WSDL_SOAP_ACTION })
    const refusal = readAnswer(exchange.body)
    record(id, refusal.fault && exchange.status >= 400 ? 'pass' : 'fail', describe(exchange, refusal))
  }
  await refused('request.not-xml', 'this is not XML <GetTaskStatus>')
  await refused('request.empty', '')
  await refused('request.missing-taskid', endpoint.envelope('GetTaskStatus', ''))

  // Each variant asks about the same unknown TaskId: a server that accepts the envelope answers it as it
  // answered the vendor's own sample.
  const field = `<TaskId>${escapeXml(unknownId)}</TaskId>`
  const variants: Array<[CheckId, string, Record<string, string | undefined>]> = [
    ['envelope.soapenv-declaration-header', endpoint.envelope('GetTaskStatus', field, { prefix: 'soapenv', xmlDeclaration: true, emptyHeader: true }), { SOAPAction: WSDL_SOAP_ACTION }],
    ['envelope.prefix-soap-env', endpoint.envelope('GetTaskStatus', field, { prefix: 'SOAP-ENV' }), { SOAPAction: WSDL_SOAP_ACTION }],
    ['envelope.no-namespace', endpoint.envelope('GetTaskStatus', field, { operationAttributes: '' }), { SOAPAction: WSDL_SOAP_ACTION }],
    ['envelope.value-whitespace', endpoint.envelope('GetTaskStatus', `<TaskId>  ${escapeXml(unknownId)} \n</TaskId>`), { SOAPAction: WSDL_SOAP_ACTION }],
    ['envelope.soapaction-unquoted', endpoint.envelope('GetTaskStatus', field), { SOAPAction: 'GetTaskStatus' }],
    ['envelope.soapaction-operation', endpoint.envelope('GetTaskStatus', field), { SOAPAction: '"GetTaskStatus"' }],
    ['envelope.soapaction-missing', endpoint.envelope('GetTaskStatus', field), {}],
    ['envelope.content-type-soap12', endpoint.envelope('GetTaskStatus', field), { 'Content-Type': 'application/soap+xml; charset=utf-8', SOAPAction: WSDL_SOAP_ACTION }],
  ]
  for (const [id, body, headers] of variants) {
    if (!answer.fault || loginRefused) {
      record(id, 'skip', `the vendor's sample got no fault to compare with: ${shown}`)
      continue
    }
    const exchange = await endpoint.post(body, headers)
    const variant = readAnswer(exchange.body)
    const same = exchange.status === baseline.status && variant.fault?.faultcode === answer.fault?.faultcode && variant.fault?.faultstring === answer.fault?.faultstring && variant.values.get('Status') === answer.values.get('Status')
    record(id, same ? 'pass' : 'fail', same ? describe(exchange, variant) : `${describe(exchange, variant)}; the vendor's sample got ${shown}`)
  }
}

/** The four checks on the vendor's own GetTaskStatus sample asking about an unknown TaskId. */
function recordUnknownTask(answer: SoapAnswer, shown: string, httpStatus: number, record: Recorder): void {
  record('unknown-task.http-status', answer.fault && httpStatus >= 400 ? 'pass' : 'fail', shown)
  record('unknown-task.fault', answer.fault?.faultcode && answer.fault.faultstring ? 'pass' : 'fail', shown)
  const exception = answer.fault?.exceptionWs
  record(
    'unknown-task.exceptionws',
    exception?.namespace === APUBI_NS && exception.message ? 'pass' : 'fail',
    !answer.fault ? shown : !answer.fault.hasDetail ? `${shown}; the fault has no detail` : !exception ? `${shown}; no ExceptionWS in the detail` : `ExceptionWS in namespace "${exception.namespace}", message ${exception.message === undefined ? 'missing' : `"${exception.message}"`}`,
  )
  const wording = answer.fault && /Server$/.test(answer.fault.faultcode) && /Task ?Id does not exist/i.test(`${answer.fault.faultstring} ${exception?.message ?? ''}`)
  record('unknown-task.wording', wording ? 'pass' : answer.fault ? 'warn' : 'fail', shown)
}

async function fileLifecycle(endpoint: Endpoint, asset: Asset, plan: CheckPlan, record: Recorder): Promise<void> {
  const loadFields = `<SourceAssetUrl>${escapeXml(asset.source)}</SourceAssetUrl><DestinationAsset>${escapeXml(asset.destination)}</DestinationAsset><MetaData/>`
  const first = await submit(endpoint, 'LoadAsset', loadFields)
  record('load.accepted', first.taskId ? 'pass' : 'fail', first.evidence)
  if (!first.taskId) {
    for (const id of ['load.resubmitted', 'load.states', 'load.success', 'load.destination', 'purge.success', 'purge.absent'] as const) record(id, 'skip', 'LoadAsset gave no TaskId')
    return
  }
  // Sent before the first poll, while the task is most likely still in progress: the WFM resends
  // after a timeout without knowing whether its first request arrived.
  const again = await submit(endpoint, 'LoadAsset', loadFields)
  const end = await waitForEnd(endpoint, first.taskId, plan)
  const endedFirst = end.polls.length > 0 && end.polls[0] !== 'IN_PROGRESS'
  if (!again.taskId) record('load.resubmitted', 'warn', `the second LoadAsset got no TaskId: ${again.evidence}`)
  else if (again.taskId === first.taskId) record('load.resubmitted', 'pass', `same TaskId ${again.taskId}`)
  else record('load.resubmitted', 'warn', `a second task ${again.taskId} beside ${first.taskId}${endedFirst ? ' (the first had perhaps ended already)' : ''}: a WFM that resends after a timeout starts a second copy`)
  if (again.taskId && again.taskId !== first.taskId) await waitForEnd(endpoint, again.taskId, plan)

  const odd = end.polls.filter((s) => !STATES.has(s))
  record('load.states', odd.length === 0 && end.polls.length > 0 ? 'pass' : 'fail', odd.length > 0 ? `answered ${[...new Set(odd)].map((s) => JSON.stringify(s)).join(', ')}` : end.polls.length === 0 ? end.evidence : `${pollCount(end.polls.length)}: ${summarize(end.polls)}`)
  const destination = recordLoad(end, 'load.success', 'load.destination', record)
  if (destination === undefined) {
    record('purge.success', 'skip', 'nothing was published')
    record('purge.absent', 'skip', 'nothing was published')
    return
  }
  const purged = await purge(endpoint, destination, plan)
  record('purge.success', purged.status === 'SUCCESS' ? 'pass' : 'fail', purged.evidence)
  const absent = await purge(endpoint, destination, plan)
  record('purge.absent', absent.status === 'SUCCESS' ? 'pass' : 'warn', absent.evidence)
}

async function packageLifecycle(endpoint: Endpoint, asset: Asset, kind: 'directory' | 'hls', plan: CheckPlan, record: Recorder): Promise<void> {
  const submitted = await submit(endpoint, 'LoadAsset', `<SourceAssetUrl>${escapeXml(asset.source)}</SourceAssetUrl><DestinationAsset>${escapeXml(asset.destination)}</DestinationAsset><MetaData/>`)
  const end = submitted.taskId ? await waitForEnd(endpoint, submitted.taskId, plan) : { polls: [], evidence: submitted.evidence }
  const destination = recordLoad(end, `${kind}.load`, `${kind}.destination`, record)
  if (destination === undefined) return record(`${kind}.purge`, 'skip', 'nothing was published')
  const purged = await purge(endpoint, destination, plan)
  record(`${kind}.purge`, purged.status === 'SUCCESS' ? 'pass' : 'fail', purged.evidence)
}

/** Records how a load ended and whether it said where; returns what to purge (the DestinationAsset). */
function recordLoad(end: TaskEnd, loaded: CheckId, destination: CheckId, record: Recorder): string | undefined {
  record(loaded, end.status === 'SUCCESS' ? 'pass' : 'fail', end.evidence)
  if (end.status !== 'SUCCESS') {
    record(destination, 'skip', 'the task did not succeed')
    return undefined
  }
  if (!end.destinationAsset) {
    record(destination, 'fail', 'SUCCESS without a DestinationAsset: the WFM has nothing to store for later purges')
    return undefined
  }
  record(destination, 'pass', `DestinationAsset ${end.destinationAsset}`)
  return end.destinationAsset
}

async function submit(endpoint: Endpoint, operation: 'LoadAsset' | 'PurgeAsset', fields: string): Promise<{ taskId?: string; evidence: string }> {
  const exchange = await endpoint.call(operation, fields)
  const answer = readAnswer(exchange.body)
  const taskId = exchange.status === 200 && !answer.fault ? answer.values.get('TaskId') : undefined
  return { ...(taskId && { taskId }), evidence: describe(exchange, answer) }
}

interface TaskEnd {
  readonly status?: 'SUCCESS' | 'FAILED'
  readonly destinationAsset?: string
  /** Every Status answered, in order. */
  readonly polls: readonly string[]
  readonly evidence: string
}

/** Polls at the plan's interval until SUCCESS or FAILED, a fault, no answer, or the time allowed is up. */
async function waitForEnd(endpoint: Endpoint, taskId: string, plan: CheckPlan): Promise<TaskEnd> {
  const polls: string[] = []
  const deadline = performance.now() + plan.timeoutMs
  const started = performance.now()
  for (;;) {
    const exchange = await endpoint.call('GetTaskStatus', `<TaskId>${escapeXml(taskId)}</TaskId>`)
    const answer = readAnswer(exchange.body)
    const status = answer.values.get('Status')
    if (exchange.status !== 200 || answer.fault || status === undefined) return { polls, evidence: `after ${pollCount(polls.length)}: ${describe(exchange, answer)}` }
    polls.push(status)
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    if (status === 'SUCCESS' || status === 'FAILED') {
      const destinationAsset = answer.values.get('DestinationAsset')
      return { status, ...(destinationAsset && { destinationAsset }), polls, evidence: `${status} after ${seconds} s (${pollCount(polls.length)})${destinationAsset ? `, DestinationAsset ${destinationAsset}` : ''}` }
    }
    if (!STATES.has(status)) return { polls, evidence: `Status "${status}" after ${pollCount(polls.length)}` }
    if (performance.now() + plan.intervalMs > deadline) return { polls, evidence: `still ${status} after ${seconds} s (${pollCount(polls.length)})` }
    await new Promise((resolve) => setTimeout(resolve, plan.intervalMs))
  }
}

async function purge(endpoint: Endpoint, destination: string, plan: CheckPlan): Promise<TaskEnd> {
  const submitted = await submit(endpoint, 'PurgeAsset', `<DestinationAsset>${escapeXml(destination)}</DestinationAsset>`)
  if (!submitted.taskId) return { polls: [], evidence: `PurgeAsset: ${submitted.evidence}` }
  return waitForEnd(endpoint, submitted.taskId, plan)
}

/** `HTTP 500, fault soapenv:Server "Task Id does not exist", ExceptionWS "…"`, or what came instead. */
export function describe(exchange: Exchange, answer: SoapAnswer): string {
  if (exchange.error) return `no answer: ${exchange.error}`
  const parts = [`HTTP ${exchange.status}`]
  const { fault } = answer
  if (fault) {
    parts.push(`fault ${fault.faultcode || '(no faultcode)'} "${fault.faultstring}"`)
    parts.push(fault.exceptionWs ? `ExceptionWS "${fault.exceptionWs.message ?? ''}"` : fault.hasDetail ? 'detail without ExceptionWS' : 'no detail')
  } else if (!answer.wellFormed) {
    parts.push(`${exchange.contentType || 'no Content-Type'}, not XML (${answer.parseError})`)
  } else {
    for (const name of ['TaskId', 'Status', 'DestinationAsset']) {
      const value = answer.values.get(name)
      if (value !== undefined) parts.push(`${name} ${value}`)
    }
  }
  return parts.join(', ')
}

function pollCount(n: number): string {
  return n === 1 ? '1 poll' : `${n} polls`
}

/** `IN_PROGRESS ×3, SUCCESS`. */
function summarize(states: readonly string[]): string {
  const runs: Array<[string, number]> = []
  for (const s of states) {
    const last = runs[runs.length - 1]
    if (last && last[0] === s) last[1]++
    else runs.push([s, 1])
  }
  return runs.map(([s, n]) => (n > 1 ? `${s} ×${n}` : s)).join(', ')
}

function clip(text: string): string {
  return text.length <= EVIDENCE_CHARS ? text : `${text.slice(0, EVIDENCE_CHARS - 1)}…`
}
