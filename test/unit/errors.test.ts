// The error catalog (src/errors.ts) against its documentation (docs/errors.md): every code listed
// exactly once, no other code, and the Fault and Retried columns as the catalog says.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { catalog, PublishError, type Code } from '../../src/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
const codes = Object.keys(catalog) as Code[]

interface Row {
  readonly code: string
  readonly fault: string
  readonly retried: string
  readonly meaning: string
  readonly howToSolve: string
}

/** The rows of the `| Code | Fault | Retried | Meaning | How to solve |` table. */
function tableRows(): Row[] {
  return doc
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const cells = line.slice(1, line.endsWith('|') ? -1 : undefined).split('|').map((cell) => cell.trim())
      assert.equal(cells.length, 5, `five cells in: ${line}`)
      const [code = '', fault = '', retried = '', meaning = '', howToSolve = ''] = cells
      return { code: code.replace(/^`|`$/g, ''), fault, retried, meaning, howToSolve }
    })
}

const FAULTS: Record<string, 'Client' | 'Server' | null> = { Client: 'Client', Server: 'Server', '—': null }
const RETRIED: Record<string, boolean> = { yes: true, no: false }

describe('error catalog', () => {
  it('has the table header the docs promise', () => {
    assert.match(doc, /^\| Code \| Fault \| Retried \| Meaning \| How to solve \|$/m)
  })

  it('mentions every code exactly once in docs/errors.md', () => {
    const mentions = doc.match(/\bERR_[A-Z0-9_]+\b/g) ?? []
    for (const code of codes) {
      assert.equal(mentions.filter((m) => m === code).length, 1, `${code} mentioned once`)
    }
  })

  it('documents no code that is not in the catalog', () => {
    const mentions = new Set(doc.match(/\bERR_[A-Z0-9_]+\b/g) ?? [])
    assert.deepEqual([...mentions].filter((m) => !Object.hasOwn(catalog, m)), [])
  })

  it('has one table row per code, in catalog order', () => {
    assert.deepEqual(
      tableRows().map((r) => r.code),
      codes,
    )
  })

  for (const row of tableRows()) {
    it(`${row.code}: Fault and Retried match the catalog, Meaning and How to solve are filled in`, () => {
      assert.ok(Object.hasOwn(catalog, row.code), `${row.code} is catalogued`)
      const entry = catalog[row.code as Code]
      assert.ok(row.fault in FAULTS, `Fault is Client, Server or —, not '${row.fault}'`)
      assert.equal(FAULTS[row.fault], entry.fault)
      assert.ok(row.retried in RETRIED, `Retried is yes or no, not '${row.retried}'`)
      assert.equal(RETRIED[row.retried], entry.retry)
      assert.notEqual(row.meaning, '')
      assert.notEqual(row.howToSolve, '')
    })
  }

  it('gives each code its own text', () => {
    const texts = codes.map((code) => catalog[code].text)
    assert.equal(new Set(texts).size, texts.length)
  })

  for (const code of codes) {
    it(`new PublishError('${code}') carries the code, the catalog text and the retry flag`, () => {
      const error = new PublishError(code)
      assert.equal(error.code, code)
      assert.equal(error.name, 'PublishError')
      assert.equal(error.message, catalog[code].text)
      assert.equal(error.retryable, catalog[code].retry)
    })
  }
})
