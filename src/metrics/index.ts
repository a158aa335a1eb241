// Public API of metrics/: the Prometheus registry and what feeds it, /metrics, /healthz, /readyz.
export { createMetrics } from './metrics.js'
export type { Metrics, MetricSources, ObservedTask } from './metrics.js'
export { answerWhileStarting, createProbeEdge } from './probes.js'
export type { ProbeEdgeOptions } from './probes.js'
