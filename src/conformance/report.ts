import { escapeXml } from '../soap/index.js'
import type { CheckResult } from './checks.js'

/** `12 passed, 1 failed, 2 warnings, 3 skipped`. */
export function summaryLine(results: readonly CheckResult[]): string {
  const count = (outcome: CheckResult['outcome']) => results.filter((r) => r.outcome === outcome).length
  return `${count('pass')} passed, ${count('fail')} failed, ${count('warn')} warnings, ${count('skip')} skipped`
}

/** One line a check: outcome, id, the basis of the requirement, evidence; the title under the id. */
export function renderTable(results: readonly CheckResult[]): string {
  const header = ['RESULT', 'CHECK', 'FROM', 'EVIDENCE']
  const rows = results.map((r) => [r.outcome.toUpperCase(), r.id, r.basis, r.evidence])
  const widths = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd()
  return [line(header), ...rows.map(line), '', summaryLine(results)].join('\n')
}

/**
 * JUnit XML as CI servers read it: one testsuite, one testcase per check; a failure for `fail`,
 * `skipped` for `skip`, and a warning's evidence in system-out (JUnit has no warning state).
 */
export function renderJunit(results: readonly CheckResult[], url: string): string {
  const count = (outcome: CheckResult['outcome']) => results.filter((r) => r.outcome === outcome).length
  const seconds = (ms: number) => (ms / 1000).toFixed(3)
  const total = results.reduce((sum, r) => sum + r.ms, 0)
  const cases = results.map((r) => {
    const open = `    <testcase classname="apubi.check" name="${escapeXml(r.id)}" time="${seconds(r.ms)}">`
    const body =
      r.outcome === 'fail'
        ? `<failure message="${escapeXml(r.evidence)}">${escapeXml(r.title)}</failure>`
        : r.outcome === 'skip'
          ? `<skipped message="${escapeXml(r.evidence)}"/>`
          : `<system-out>${escapeXml(`${r.outcome === 'warn' ? 'WARNING: ' : ''}${r.title}: ${r.evidence}`)}</system-out>`
    return `${open}${body}</testcase>`
  })
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="apubi check" tests="${results.length}" failures="${count('fail')}" skipped="${count('skip')}" time="${seconds(total)}">`,
    `  <testsuite name="${escapeXml(url)}" tests="${results.length}" failures="${count('fail')}" errors="0" skipped="${count('skip')}" time="${seconds(total)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}
