// Public API of conformance/: `apubi check` (does a server answer as the WFM expects?) and
// `apubi simulate` (how does it hold up under a WFM's polling?), against any APUBI endpoint.
export { CHECKS } from './catalog.js'
export type { Basis, CheckId } from './catalog.js'
export { runChecks } from './checks.js'
export type { Asset, CheckPlan, CheckResult, Outcome } from './checks.js'
export { Endpoint } from './endpoint.js'
export type { EndpointOptions } from './endpoint.js'
export { renderJunit, renderTable } from './report.js'
export { simulate } from './simulate.js'
export type { SimulatePlan, SimulationProgress, SimulationReport } from './simulate.js'
