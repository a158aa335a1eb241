// The dashboard in a real headless browser (Debian's chromium, driven by playwright-core) against a
// running server: it lists a running publish and shows its progress advancing without a reload, shows
// a failed task's reason and history, cancels a task, and shows no credential anywhere. A screenshot
// is saved under test-artifacts/.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { call, ORIGIN_USER, privateFile, startSlowOrigin, taskWhen, type SlowOrigin } from '../admin/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { eventually, listFiles } from './helpers.js'

const CHROMIUM = process.env['APUBI_TEST_CHROMIUM'] ?? '/usr/bin/chromium'
const hasBrowser = existsSync(CHROMIUM)
if (!hasBrowser) {
  console.warn(`\n*** SKIPPED: the dashboard browser test needs Chromium at ${CHROMIUM} (apt-get install chromium, as .ci/run does) ***\n`)
}

const ADMIN_TOKEN = 'dashboard-token-0123456789abcdef'
const ORIGIN_PASSWORD = 'Dash-S3cret-pw'
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

describe('dashboard in a browser', { skip: hasBrowser ? false : `no Chromium at ${CHROMIUM}` }, () => {
  let server: TestServer
  let slow: SlowOrigin
  let browser: Browser
  let page: Page
  let failed: string
  let running: string
  const apiAnswers: string[] = []

  before(async () => {
    server = await startServer({ env: { APUBI_ADMIN_TOKEN: ADMIN_TOKEN, APUBI_WORKERS: '2' } })
    slow = await startSlowOrigin(server.fileRoot, ORIGIN_PASSWORD, 64 * 1024)
    await privateFile(server.fileRoot, 'big.bin', 4 << 20)
    const client = new ApubiClient(server.url)
    // Straight to the origin (not the slow link): a file it does not have.
    failed = await client.loadAsset(`http://${ORIGIN_USER}:${ORIGIN_PASSWORD}@127.0.0.1:${slow.origin.port}/private/missing.bin`, 'dash/missing.bin')
    await taskWhen(server, failed, (t) => t.state === 'failed', ADMIN_TOKEN)
    running = await client.loadAsset(slow.url('big.bin'), 'dash/big.bin')

    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true })
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    page.on('dialog', (dialog) => void dialog.accept())
    page.on('response', (response) => {
      if (response.url().includes('/admin/api/')) response.text().then((text) => apiAnswers.push(text), () => {})
    })
  })
  after(async () => {
    await browser?.close()
    await server?.stop()
    await slow?.close()
  })

  const row = (id: string) => page.locator(`#tasks tr[data-task-id="${id}"]`)
  const progressOf = (id: string) => row(id).locator('progress').evaluate((bar) => (bar as unknown as { value: number }).value)

  it('takes the token from the address, then drops it from there', async () => {
    await page.goto(`http://127.0.0.1:${server.port}/admin?token=${ADMIN_TOKEN}`)
    await page.locator('#app').waitFor({ state: 'visible' })
    assert.equal(new URL(page.url()).search, '')
    // A reload would lose this: the checks below prove the page updates itself.
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true))
  })

  it('lists the running publish and shows its progress advancing', async () => {
    await row(running).and(page.locator('[data-state="running"]')).waitFor()
    const first = await eventually(async () => {
      const value = await progressOf(running)
      return value > 0 ? value : undefined
    })
    const later = await eventually(async () => {
      const value = await progressOf(running)
      return value > first ? value : undefined
    })
    assert.ok(later > first)
    assert.equal(await row(running).locator('progress').getAttribute('max'), String(4 << 20))
    await eventually(async () => ((await row(running).locator('.speed').textContent())?.endsWith('/s') ? true : undefined))
    assert.match((await row(running).locator('.source').textContent()) ?? '', new RegExp(`^http://${ORIGIN_USER}:\\*\\*\\*@127\\.0\\.0\\.1:\\d+/private/big\\.bin$`))
    await eventually(async () => ((await page.locator('#total-running').textContent()) === '1' ? true : undefined))
    assert.equal(await page.locator('#total-failed').textContent(), '1')
  })

  it("shows a failed task's reason, and its attempt history in the detail view", async () => {
    const reason = (await row(failed).locator('.reason').textContent()) ?? ''
    assert.match(reason, /^ERR_NOT_FOUND: .*missing\.bin/)
    await row(failed).click()
    await page.locator('#detail').waitFor({ state: 'visible' })
    await eventually(async () => ((await page.locator('#detail-id').textContent()) === failed ? true : undefined))
    const history = (await page.locator('#detail-errors tbody').textContent()) ?? ''
    assert.match(history, /ERR_NOT_FOUND/)
    assert.match((await page.locator('#detail-fields').textContent()) ?? '', new RegExp(`${ORIGIN_USER}:\\*\\*\\*@`))
    assert.equal(await page.locator('#detail-rerun').isVisible(), true, 'a failed task can be re-run')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
  })

  it('cancels the running task: it ends failed, cancelled by operator, with no partial file left', async () => {
    await row(running).locator('button.cancel').click()
    await row(running).and(page.locator('[data-state="failed"]')).waitFor()
    assert.match((await row(running).locator('.reason').textContent()) ?? '', /^ERR_CANCELLED: cancelled by operator$/)
    const task = (await call(server, `/admin/api/tasks/${running}`, { token: ADMIN_TOKEN })).json
    assert.deepEqual(task.lastError, { code: 'ERR_CANCELLED', message: 'cancelled by operator' })
    assert.deepEqual(await listFiles(join(server.dataDir, 'cdn', 'dash')).catch(() => []), [])
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-cancelled.png'), fullPage: true })
  })

  it('never reloaded, and shows no credential anywhere: page, address, API answers, log', async () => {
    assert.equal(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce), true)
    const html = await page.content()
    const text = await page.locator('body').innerText()
    for (const secret of [ORIGIN_PASSWORD, encodeURIComponent(ORIGIN_PASSWORD), ADMIN_TOKEN]) {
      assert.equal(html.includes(secret), false, `page HTML holds ${secret}`)
      assert.equal(text.includes(secret), false, `page text holds ${secret}`)
      assert.equal(page.url().includes(secret), false)
      assert.equal(server.output().includes(secret), false, `log holds ${secret}`)
    }
    assert.ok(apiAnswers.length > 10, 'the page kept asking the API')
    for (const answer of apiAnswers) assert.equal(answer.includes(ORIGIN_PASSWORD), false)
  })
})
