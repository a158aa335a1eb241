// The pure parts of `apubi check` and `apubi simulate`: reading any server's answer, percentiles,
// the JUnit report, and the docs' list of checks against the catalog.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { parseXml, readAnswer } from '../../src/conformance/answer.js'
import { CHECKS, renderJunit, renderTable, type CheckResult } from '../../src/conformance/index.js'
import { percentiles } from '../../src/conformance/simulate.js'

describe('readAnswer', () => {
  it('reads the vendor\'s fault sample (seed-GetTaskStatus.txt), trailing space and all', () => {
    const sample = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="wfm:APUBI/v1/schemas">
    <soapenv:Header/>
    <soapenv:Body>
        <soapenv:Fault>
            <faultcode>env:Server</faultcode>
            <faultstring>Task Id does not exist </faultstring>
            <detail>
                <ns2:ExceptionWS xmlns:ns2="wfm:APUBI/v1/schemas">
                    <message>Task Id does not exist</message>
                  </ns2:ExceptionWS>
            </detail>
        </soapenv:Fault>
    </soapenv:Body>
</soapenv:Envelope>`
    assert.deepEqual(readAnswer(sample).fault, {
      faultcode: 'env:Server',
      faultstring: 'Task Id does not exist',
      hasDetail: true,
      exceptionWs: { namespace: 'wfm:APUBI/v1/schemas', message: 'Task Id does not exist' },
    })
  })

  const cases: Array<[string, string, Partial<ReturnType<typeof readAnswer>>]> = [
    ['a status answer: values by local name, any prefix', '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a:GetTaskStatusResponse xmlns:a="wfm:APUBI/v1/schemas"><a:Status>SUCCESS</a:Status><a:DestinationAsset> x/y.ts </a:DestinationAsset></a:GetTaskStatusResponse></s:Body></s:Envelope>', { wellFormed: true }],
    ['a SOAP 1.2 fault: Code/Value and Reason/Text', '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault><e:Code><e:Value>e:Receiver</e:Value></e:Code><e:Reason><e:Text>boom</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>', { fault: { faultcode: 'e:Receiver', faultstring: 'boom', hasDetail: false } }],
    ['the vendor\'s own response sample, which is not well-formed', '<ns:Status>IN_PROGRESS</ns: Status >', { wellFormed: false }],
    ['an empty body', '', { wellFormed: false, parseError: 'empty body' }],
  ]
  for (const [name, body, expected] of cases) {
    it(name, () => {
      const answer = readAnswer(body)
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(answer[key as keyof typeof answer], value)
    })
  }

  it('keeps the first value of each name, trimmed', () => {
    assert.equal(readAnswer(cases[0]![1]).values.get('DestinationAsset'), 'x/y.ts')
  })
})

describe('percentiles', () => {
  const table: Array<[number[], Partial<ReturnType<typeof percentiles>>]> = [
    [[], { count: 0, p50: 0, max: 0 }],
    [[7], { count: 1, p50: 7, p99: 7, max: 7 }],
    [[4, 1, 3, 2], { p50: 2, p90: 4, max: 4 }],
    [Array.from({ length: 100 }, (_, i) => 100 - i), { p50: 50, p90: 90, p95: 95, p99: 99, max: 100 }],
    [[1.234, 1.25], { p50: 1.2, max: 1.3 }],
  ]
  for (const [samples, expected] of table) {
    it(`${samples.length} samples`, () => assert.deepEqual({ ...percentiles(samples), ...expected }, percentiles(samples)))
  }
})

describe('reports', () => {
  const results: CheckResult[] = [
    { id: 'wsdl.served', ...CHECKS['wsdl.served'], outcome: 'pass', evidence: 'HTTP 200, well-formed XML', ms: 12 },
    { id: 'unknown-task.http-status', ...CHECKS['unknown-task.http-status'], outcome: 'fail', evidence: 'HTTP 200, fault soap:Server "Task Id <does> not exist"', ms: 3 },
    { id: 'load.resubmitted', ...CHECKS['load.resubmitted'], outcome: 'warn', evidence: 'a second task', ms: 5 },
    { id: 'load.states', ...CHECKS['load.states'], outcome: 'skip', evidence: 'LoadAsset gave no TaskId', ms: 0 },
  ]

  it('JUnit XML: well-formed, one testcase a check, failures and skips counted, evidence escaped', () => {
    const xml = renderJunit(results, 'http://h/apubi')
    const parsed = parseXml(xml)
    assert.ok(parsed.ok)
    const cases = parsed.elements.filter((e) => e.local === 'testcase')
    assert.deepEqual(cases.map((c) => c.attributes['name']), ['wsdl.served', 'unknown-task.http-status', 'load.resubmitted', 'load.states'])
    const suite = parsed.elements.find((e) => e.local === 'testsuite')!
    assert.deepEqual([suite.attributes['tests'], suite.attributes['failures'], suite.attributes['skipped'], suite.attributes['time']], ['4', '1', '1', '0.020'])
    assert.equal(parsed.elements.find((e) => e.local === 'failure')?.attributes['message'], 'HTTP 200, fault soap:Server "Task Id <does> not exist"')
    assert.match(parsed.elements.filter((e) => e.local === 'system-out')[1]!.text, /^WARNING: /)
  })

  it('the table: a line a check, then the summary', () => {
    const lines = renderTable(results).split('\n')
    assert.match(lines[0]!, /^RESULT +CHECK +FROM +EVIDENCE$/)
    assert.match(lines[2]!, /^FAIL +unknown-task\.http-status +vendor +HTTP 200/)
    assert.equal(lines.at(-1), '1 passed, 1 failed, 1 warnings, 1 skipped')
  })
})

it('docs/conformance.md lists every check, with the basis the catalog gives it, and no other', () => {
  const docs = readFileSync(new URL('../../docs/conformance.md', import.meta.url), 'utf8')
  const documented = [...docs.matchAll(/^\| `([a-z0-9.-]+)` \| (vendor|ours) \| (fail|warn) \|/gm)].map((m) => `${m[1]} ${m[2]}`)
  assert.deepEqual(documented, Object.entries(CHECKS).map(([id, c]) => `${id} ${c.basis}`))
})
