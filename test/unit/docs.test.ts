// The docs stay true to the code: every setting documented (and nothing that is not one), every
// relative link leading somewhere, and the README's test command the one CI runs.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { settings } from '../../src/config/schema.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string) => readFileSync(join(root, path), 'utf8')
const docs = ['README.md', 'CONTRIBUTING.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const configuration = read('docs/configuration.md')
/** The loader's own variable: it names the config file, so it is no setting of the schema. */
const CONFIG_FILE_VARIABLE = 'APUBI_CONFIG'

/** Markdown without its fenced code blocks, where `#` starts a comment and `[x](y)` is code. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
}

/** GitHub's anchors for the headings of `markdown`: lower case, punctuation dropped, spaces as '-', repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const slug = heading!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    result.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return result
}

describe('docs/configuration.md', () => {
  it('documents every setting, by variable and file key, and no other', () => {
    const documented = [...configuration.matchAll(/^\| (`APUBI_[A-Z0-9_]+`|\(file only\)) \[(\w+)\] \|/gm)].map((m) => `${m[1]} [${m[2]}]`)
    const expected = Object.entries(settings).map(([key, s]) => `${s.env === null ? '(file only)' : `\`${s.env}\``} [${key}]`)
    assert.deepEqual(documented.sort(), expected.sort())
  })

  it('names every APUBI_* variable the schema knows', () => {
    const missing = Object.values(settings).flatMap((s) => (s.env && !configuration.includes(s.env) ? [s.env] : []))
    assert.deepEqual(missing, [])
  })
})

it('the README and docs/ name no APUBI_* variable that the configuration does not know', () => {
  const known = new Set([CONFIG_FILE_VARIABLE, ...Object.values(settings).flatMap((s) => (s.env ? [s.env] : []))])
  const unknown = docs.flatMap((doc) =>
    [...read(doc).matchAll(/APUBI_[A-Z0-9_]+/g)]
      .map((m) => m[0])
      // `APUBI_MAX_XML_*` names a family: its prefix must start some setting's name.
      .filter((name) => !known.has(name) && !(name.endsWith('_') && [...known].some((k) => k.startsWith(name))))
      .map((name) => `${doc}: ${name}`),
  )
  assert.deepEqual([...new Set(unknown)], [])
})

it('every relative link in the README and docs/ leads to a file, and to a heading of it when it names one', () => {
  const broken: string[] = []
  for (const doc of docs) {
    for (const [, target] of prose(read(doc)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue // http:, https:, mailto:
      const [path, anchor] = target!.split('#') as [string, string | undefined]
      const file = path === '' ? join(root, doc) : join(root, dirname(doc), decodeURIComponent(path))
      if (!existsSync(file)) {
        broken.push(`${doc}: ${target} (no ${relative(root, file)})`)
      } else if (anchor !== undefined && statSync(file).isFile() && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) {
        broken.push(`${doc}: ${target} (no heading #${anchor} in ${relative(root, file)})`)
      }
    }
  }
  assert.deepEqual(broken, [])
})

it('finds the anchors GitHub makes', () => {
  const headings = "# Operators' view\n## The `apubi` CLI\n```sh\n# a comment, not a heading\n```\n## HTTPS\n## HTTPS\n"
  assert.deepEqual([...anchors(headings)], ['operators-view', 'the-apubi-cli', 'https', 'https-1'])
})

it('.ci/run runs the README test command', () => {
  const command = /## Tests\n\n```sh\n(.+)\n```/.exec(read('README.md'))?.[1]
  assert.equal(command, 'npm test')
  assert.match(read('.ci/run'), /^npm test$/m)
})

it('the README stays short: at most 15 KB', () => {
  assert.ok(statSync(join(root, 'README.md')).size <= 15 * 1024, 'README.md is over 15 KB: move detail to docs/')
})
