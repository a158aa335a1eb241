import type { Metric, Registry } from 'prom-client'

/** One sample, as prom-client's registry formats it: `labels` first, then the series' `sharedLabels`. */
interface Sample {
  readonly labels: Readonly<Record<string, string | number>>
  readonly sharedLabels: Readonly<Record<string, string>>
  readonly value: number
  readonly metricName: string
}

interface Series {
  readonly labels: Readonly<Record<string, string>>
  /** Observations per bucket, not cumulative; the last is above every bound (+Inf). */
  readonly counts: number[]
  sum: number
}

/**
 * A Prometheus histogram for a hot path, exposed through prom-client's registry like its own
 * metrics (the registry reads `get()`). prom-client's Histogram builds, validates and hashes the
 * labels at every observation: about 5,000 instructions, 5 % of a GetTaskStatus poll (counted with
 * callgrind, bench/soap-instructions.ts). Here a series is looked up once, and an observation is a
 * loop over the bounds and two additions.
 */
export class HotHistogram {
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  private readonly all = new Map<string, Series>()

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric)
  }

  /** Observes into the series of these label values (in the order of the label names). */
  series(...values: string[]): (value: number) => void {
    const key = values.join('\u0000')
    let series = this.all.get(key)
    if (!series) {
      const labels = Object.fromEntries(this.labelNames.map((name, i) => [name, values[i] ?? '']))
      this.all.set(key, (series = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 }))
    }
    const { bounds } = this
    const target = series
    return (value) => {
      let i = 0
      while (i < bounds.length && value > bounds[i]!) i++
      target.counts[i]!++
      target.sum += value
    }
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const values: Sample[] = []
    const bucket = `${this.name}_bucket`
    for (const { labels, counts, sum } of this.all.values()) {
      // The shape prom-client's own Histogram hands its registry: `le` apart from the series' labels.
      const value = (extra: Sample['labels'], v: number, metricName: string): Sample => ({ labels: extra, sharedLabels: labels, value: v, metricName })
      let cumulative = 0
      this.bounds.forEach((bound, i) => values.push(value({ le: bound }, (cumulative += counts[i]!), bucket)))
      const count = cumulative + counts[this.bounds.length]!
      values.push(value({ le: '+Inf' }, count, bucket), value({}, sum, `${this.name}_sum`), value({}, count, `${this.name}_count`))
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset(): void {
    for (const series of this.all.values()) {
      series.counts.fill(0)
      series.sum = 0
    }
  }
}
