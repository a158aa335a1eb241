/**
 * Every check `apubi check` makes, once: what it proves, and where the requirement comes from —
 * `vendor` for the vendor's published pages (the GetTaskStatus page and the samples restated in
 * APUBI.md), `ours` for our reading where they are silent. A check on an `ours` requirement that the
 * server does not meet is a warning, never a failure, unless the WFM could not work without it.
 */
export type Basis = 'vendor' | 'ours'

export interface CheckDefinition {
  readonly title: string
  readonly basis: Basis
}

export const CHECKS = {
  'wsdl.served': { title: 'GET ?wsdl answers 200 with well-formed XML', basis: 'ours' },
  'wsdl.operations': { title: 'the WSDL declares LoadAsset, PurgeAsset and GetTaskStatus', basis: 'vendor' },
  'unknown-task.http-status': { title: 'GetTaskStatus of an unknown TaskId: fault with an HTTP error status', basis: 'vendor' },
  'unknown-task.fault': { title: 'GetTaskStatus of an unknown TaskId: a SOAP Fault with faultcode and faultstring', basis: 'vendor' },
  'unknown-task.exceptionws': { title: 'the fault\'s detail holds ExceptionWS (wfm:APUBI/v1/schemas) with a message', basis: 'vendor' },
  'unknown-task.wording': { title: 'the fault is a Server fault saying "Task Id does not exist", as in the vendor\'s sample', basis: 'vendor' },
  'request.not-xml': { title: 'a body that is not XML gets a fault with an HTTP error status', basis: 'ours' },
  'request.empty': { title: 'an empty body gets a fault with an HTTP error status', basis: 'ours' },
  'request.missing-taskid': { title: 'GetTaskStatus without TaskId gets a fault with an HTTP error status', basis: 'ours' },
  'envelope.soapenv-declaration-header': { title: 'prefix soapenv, XML declaration and empty Header: answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.prefix-soap-env': { title: 'prefix SOAP-ENV: answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.no-namespace': { title: 'operation element in no namespace: answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.value-whitespace': { title: 'TaskId with surrounding spaces and a trailing newline: answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.soapaction-unquoted': { title: 'SOAPAction unquoted: answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.soapaction-operation': { title: 'SOAPAction "GetTaskStatus" (the operation\'s name): answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.soapaction-missing': { title: 'no SOAPAction header: answered as the vendor\'s sample', basis: 'vendor' },
  'envelope.content-type-soap12': { title: 'Content-Type application/soap+xml: answered as the vendor\'s sample', basis: 'vendor' },
  'load.accepted': { title: 'LoadAsset answers 200 with a TaskId', basis: 'vendor' },
  'load.resubmitted': { title: 'the same LoadAsset again while in progress: same TaskId (the vendor is silent)', basis: 'ours' },
  'load.states': { title: 'every GetTaskStatus answer is SUCCESS, FAILED or IN_PROGRESS', basis: 'vendor' },
  'load.success': { title: 'the task ends SUCCESS within the time allowed', basis: 'vendor' },
  'load.destination': { title: 'SUCCESS carries the DestinationAsset (URI or identifier)', basis: 'vendor' },
  'purge.success': { title: 'PurgeAsset of the returned DestinationAsset ends SUCCESS', basis: 'vendor' },
  'purge.absent': { title: 'PurgeAsset of what is no longer there ends SUCCESS', basis: 'ours' },
  'directory.load': { title: 'LoadAsset of a directory (trailing /) ends SUCCESS', basis: 'vendor' },
  'directory.destination': { title: 'a directory\'s SUCCESS carries the DestinationAsset', basis: 'vendor' },
  'directory.purge': { title: 'PurgeAsset of the published directory ends SUCCESS', basis: 'vendor' },
  'hls.load': { title: 'LoadAsset of an HLS package (a directory) ends SUCCESS', basis: 'ours' },
  'hls.destination': { title: 'the package\'s SUCCESS carries the DestinationAsset', basis: 'vendor' },
  'hls.purge': { title: 'PurgeAsset of the published package ends SUCCESS', basis: 'vendor' },
} as const satisfies Record<string, CheckDefinition>

export type CheckId = keyof typeof CHECKS
