// The OpenAPI description kept in the repo (src/admin/assets/openapi.json, served at
// /admin/api/openapi.json) lists exactly the routes the admin API answers, and every reference in it
// resolves.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { ROUTES } from '../../src/admin/api.js'

const spec = JSON.parse(readFileSync(new URL('../../src/admin/assets/openapi.json', import.meta.url), 'utf8'))

describe('admin API description', () => {
  it('is OpenAPI 3.1 served below /admin/api, with bearer authentication', () => {
    assert.equal(spec.openapi, '3.1.0')
    assert.deepEqual(spec.servers, [{ url: '/admin/api' }])
    assert.deepEqual(spec.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: spec.components.securitySchemes.bearer.description })
  })

  it('documents every route, and no other', () => {
    const documented = Object.entries(spec.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
      .sort()
    const served = [...ROUTES.map((r) => `${r.method} ${r.path}`), 'GET /openapi.json'].sort()
    assert.deepEqual(documented, served)
  })

  it('resolves every $ref', () => {
    const refs: string[] = []
    const visit = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(visit)
      else if (typeof value === 'object' && value !== null) {
        for (const [key, child] of Object.entries(value)) key === '$ref' ? refs.push(child as string) : visit(child)
      }
    }
    visit(spec)
    assert.ok(refs.length > 10)
    for (const ref of refs) {
      const target = ref.replace(/^#\//, '').split('/').reduce((node: Record<string, unknown> | undefined, key) => node?.[key] as Record<string, unknown> | undefined, spec)
      assert.ok(target, `${ref} resolves`)
    }
  })

  it('gives each error answer of a route a documented status', () => {
    for (const route of ROUTES) {
      const operation = spec.paths[route.path][route.method.toLowerCase()]
      for (const status of ['401', '403']) assert.ok(operation.responses[status], `${route.method} ${route.path} ${status}`)
      if (route.path.includes('{id}')) assert.ok(operation.responses['404'], `${route.method} ${route.path} 404`)
    }
  })
})
