import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Histogram, Registry } from 'prom-client'
import { HotHistogram } from '../../src/metrics/hot-histogram.js'

const BOUNDS = [0.001, 0.01, 0.1, 1]
// On a bound, below the first, between, above the last, and a series seen once.
const OBSERVED: Array<[string, string, number]> = [
  ['GetTaskStatus', 'ok', 0.0004],
  ['GetTaskStatus', 'ok', 0.001],
  ['GetTaskStatus', 'ok', 0.05],
  ['GetTaskStatus', 'ok', 7],
  ['LoadAsset', 'ERR_REQUEST_INVALID', 0.2],
]

describe('HotHistogram', () => {
  it('exposes exactly what prom-client\'s Histogram exposes for the same observations', async () => {
    const theirs = new Registry()
    const reference = new Histogram({ name: 'soap_seconds', help: 'SOAP answers', labelNames: ['operation', 'outcome'], buckets: BOUNDS, registers: [theirs] })
    const ours = new Registry()
    const hot = new HotHistogram('soap_seconds', 'SOAP answers', ['operation', 'outcome'], BOUNDS, ours)
    for (const [operation, outcome, seconds] of OBSERVED) {
      reference.labels(operation, outcome).observe(seconds)
      hot.series(operation, outcome)(seconds)
    }
    const text = await ours.metrics()
    assert.equal(text, await theirs.metrics())
    assert.match(text, /^soap_seconds_bucket\{le="0.001",operation="GetTaskStatus",outcome="ok"\} 2$/m)
    assert.match(text, /^soap_seconds_count\{operation="GetTaskStatus",outcome="ok"\} 4$/m)
  })

  it('resets every series to zero with the registry', async () => {
    const registry = new Registry()
    const hot = new HotHistogram('soap_seconds', 'SOAP answers', ['operation'], BOUNDS, registry)
    const observe = hot.series('GetTaskStatus')
    observe(0.5)
    registry.resetMetrics()
    observe(0.002)
    const text = await registry.metrics()
    assert.match(text, /^soap_seconds_count\{operation="GetTaskStatus"\} 1$/m)
    assert.match(text, /^soap_seconds_sum\{operation="GetTaskStatus"\} 0.002$/m)
  })
})
