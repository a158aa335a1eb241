import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_PARSE_LIMITS, parseRequest, type SoapRequest } from '../../src/soap/index.js'
import { rememberStatusParses } from '../../src/soap/parse-memo.js'

const status = (taskId: string) =>
  `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetTaskStatus xmlns="wfm:APUBI/v1/schemas"><TaskId>${taskId}</TaskId></GetTaskStatus></s:Body></s:Envelope>`

/** The real parser, counting the texts it was given. */
function countingParser(capacity?: number) {
  const parsed: string[] = []
  const parse = rememberStatusParses((xml) => (parsed.push(xml), parseRequest(xml, DEFAULT_PARSE_LIMITS)), capacity)
  return { parse, parsed }
}

describe('rememberStatusParses', () => {
  it('parses a repeated GetTaskStatus text once and answers the same request', () => {
    const { parse, parsed } = countingParser()
    const first = parse(status('t1'))
    assert.deepEqual(parse(status('t1')), { operation: 'GetTaskStatus', taskId: 't1' })
    assert.equal(parse(status('t1')), first)
    assert.equal(parsed.length, 1)
    assert.ok(Object.isFrozen(first), 'a remembered request cannot be changed by its user')
  })

  it('parses every different text, and drops the oldest past its capacity', () => {
    const { parse, parsed } = countingParser(2)
    for (const id of ['a', 'b', 'c']) parse(status(id))
    assert.deepEqual(parse(status('c')), { operation: 'GetTaskStatus', taskId: 'c' })
    assert.equal(parsed.length, 3, 'the newest is remembered')
    parse(status('a'))
    assert.equal(parsed.length, 4, 'the oldest was dropped')
  })

  it('does not remember faults or other operations', () => {
    const { parse, parsed } = countingParser()
    const broken = status('t1').replace('</TaskId>', '')
    for (let i = 0; i < 2; i++) assert.throws(() => parse(broken), /Malformed XML/)
    const purge = status('x').replace(/GetTaskStatus/g, 'PurgeAsset').replace(/TaskId/g, 'DestinationAsset')
    const requests: SoapRequest[] = [parse(purge), parse(purge)]
    assert.deepEqual(requests[1], { operation: 'PurgeAsset', destinationAsset: 'x' })
    assert.equal(parsed.length, 4)
  })
})
