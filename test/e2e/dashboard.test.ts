// The dashboard in a real headless browser (Debian's chromium, driven by playwright-core) against a
// running server, as an on-call engineer uses it: a running publish whose progress advances without a
// reload; text selected in a row that stays selected across refreshes; a button held down across a
// refresh that still acts; a task found by its pasted TaskId or its first 8 characters; a task's
// link opened in a new page; 25 or more finished tasks on a 1440×900 screen; a bulk re-run that
// names the task it re-ran; and no credential anywhere. Screenshots are saved under test-artifacts/.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { ApubiClient } from '../../src/client/apubi-client.js'
import { call, ORIGIN_USER, privateFile, startSlowOrigin, taskWhen, type SlowOrigin } from '../admin/helpers.js'
import { startServer, type TestServer } from '../servers/apubi-server.js'
import { eventually, listFiles } from './helpers.js'

// What the page's own code sees; used only inside page.evaluate (tsconfig has no DOM library).
declare const document: { createRange(): { selectNodeContents(node: unknown): void } }
declare function getSelection(): { removeAllRanges(): void; addRange(range: unknown): void } | null

const CHROMIUM = process.env['APUBI_TEST_CHROMIUM'] ?? '/usr/bin/chromium'
const hasBrowser = existsSync(CHROMIUM)
if (!hasBrowser) {
  console.warn(`\n*** SKIPPED: the dashboard browser test needs Chromium at ${CHROMIUM} (apt-get install chromium, as .ci/run does) ***\n`)
}

const ADMIN_TOKEN = 'dashboard-token-0123456789abcdef'
const ORIGIN_PASSWORD = 'Dash-S3cret-pw'
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))
const FINISHED = 30

describe('dashboard in a browser', { skip: hasBrowser ? false : `no Chromium at ${CHROMIUM}` }, () => {
  let server: TestServer
  let slow: SlowOrigin
  let browser: Browser
  let page: Page
  let failed: string
  let running: string
  const apiAnswers: string[] = []
  const dialogs: string[] = []

  before(async () => {
    // A bandwidth cap far above what the tests move: the header shows it, and nothing slows down.
    server = await startServer({ env: { APUBI_ADMIN_TOKEN: ADMIN_TOKEN, APUBI_WORKERS: '2', APUBI_BANDWIDTH_LIMIT: '08:00,1G 08:01,1G' } })
    slow = await startSlowOrigin(server.fileRoot, ORIGIN_PASSWORD, 64 * 1024)
    await privateFile(server.fileRoot, 'big.bin', 4 << 20)
    const client = new ApubiClient(server.url)
    // Finished tasks to fill a screen with: small local files, each to its own destination.
    writeFileSync(join(server.fileRoot, 'small.ts'), Buffer.alloc(150_000, 7))
    const finished: string[] = []
    for (let i = 0; i < FINISHED; i++) finished.push(await client.loadAsset(pathToFileURL(join(server.fileRoot, 'small.ts')).href, `vod/small-${i}.ts`))
    for (const id of finished) await taskWhen(server, id, (t) => t.state === 'succeeded', ADMIN_TOKEN)
    // Straight to the origin (not the slow link): a file it does not have.
    failed = await client.loadAsset(`http://${ORIGIN_USER}:${ORIGIN_PASSWORD}@127.0.0.1:${slow.origin.port}/private/missing.bin`, 'dash/missing.bin')
    await taskWhen(server, failed, (t) => t.state === 'failed', ADMIN_TOKEN)
    running = await client.loadAsset(slow.url('big.bin'), 'dash/big.bin')

    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true })
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' })
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message())
      void dialog.accept()
    })
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
  /** Resolves after `count` more refreshes of the page (each stamps #status). */
  const refreshes = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const before = await page.locator('#status').getAttribute('data-updated')
      await eventually(async () => ((await page.locator('#status').getAttribute('data-updated')) !== before ? true : undefined))
    }
  }
  const search = async (text: string) => {
    await page.locator('#filters [name="q"]').fill(text)
    await eventually(async () => (new URL(page.url()).searchParams.get('q') === (text || null) ? true : undefined))
    await refreshes(1)
  }
  const visibleIds = () => page.locator('#tasks tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { taskId: string } }).dataset.taskId))

  it('takes the token from the address, then drops it from there', async () => {
    await page.goto(`http://127.0.0.1:${server.port}/admin?token=${ADMIN_TOKEN}`)
    await page.locator('#app').waitFor({ state: 'visible' })
    assert.equal(new URL(page.url()).searchParams.has('token'), false)
    // A reload would lose this: the checks below prove the page updates itself.
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true))
  })

  it('lists the running publish on top and shows its progress advancing; the header counts and names the instance', async () => {
    await row(running).and(page.locator('[data-state="running"]')).waitFor()
    assert.equal(await visibleIds().then((ids) => ids[0]), running, 'running tasks come first')
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
    assert.equal(await page.locator('#total-succeeded').textContent(), String(FINISHED))
    assert.match((await page.locator('#instance').textContent()) ?? '', /^.+:\d+ · v\d+\.\d+\.\d+/)
    assert.equal(await page.locator('#ready').textContent(), 'ready')
    assert.match((await page.locator('#live-mark').textContent()) ?? '', /^live · updated \d+ s ago$/)
    assert.equal(await page.locator('[data-count="failed"]').textContent(), '1')
  })

  it('shows the bandwidth cap in the header, and follows a change through the admin API', async () => {
    await eventually(async () => ((await page.locator('#total-bandwidth').textContent()) === '1.0 GiB/s' ? true : undefined))
    assert.equal(await page.locator('#total-bandwidth').getAttribute('title'), 'overall: 08:00,1G 08:01,1G')
    const changed = await fetch(`http://127.0.0.1:${server.port}/admin/api/bandwidth`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ overall: '2G', hosts: { 'origin.example.net': '08:00,4M 20:00,off' } }),
    })
    assert.equal(changed.status, 200)
    await eventually(async () => ((await page.locator('#total-bandwidth').textContent()) === '2.0 GiB/s' ? true : undefined))
    assert.equal(await page.locator('#total-bandwidth').getAttribute('title'), 'overall: 2G (changed at run time)\norigin.example.net: 08:00,4M 20:00,off')
    await fetch(`http://127.0.0.1:${server.port}/admin/api/bandwidth`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ overall: null, hosts: { 'origin.example.net': null } }),
    })
  })

  it('keeps text selected in a row across three refreshes', async () => {
    const selected = await row(failed)
      .locator('.source')
      .evaluate((node) => {
        const range = document.createRange()
        range.selectNodeContents(node)
        getSelection()!.removeAllRanges()
        getSelection()!.addRange(range)
        return String(getSelection())
      })
    assert.match(selected, /missing\.bin$/)
    await refreshes(3)
    assert.equal(await page.evaluate(() => String(getSelection())), selected)
    await page.evaluate(() => getSelection()!.removeAllRanges())
  })

  it("shows a failed task's reason in words, and its detail beside the table, not below it", async () => {
    const reason = (await row(failed).locator('.reason').textContent()) ?? ''
    assert.match(reason, /^Source or destination not found: .*missing\.bin/)
    await row(failed).locator('.state').click()
    await page.locator('#detail').waitFor({ state: 'visible' })
    await eventually(async () => ((await page.locator('#detail-id').textContent()) === failed ? true : undefined))
    const box = (await page.locator('#detail').boundingBox())!
    assert.ok(box.y < 10 && box.x > 400 && box.x + box.width <= 1440, `the detail at ${JSON.stringify(box)}`)
    assert.match((await page.locator('#detail-errors tbody').textContent()) ?? '', /ERR_NOT_FOUND/)
    assert.match((await page.locator('#detail-fields').textContent()) ?? '', new RegExp(`${ORIGIN_USER}:\\*\\*\\*@`))
    assert.equal(await page.locator('#detail-rerun').isVisible(), true, 'a failed task can be re-run')
    assert.equal(new URL(page.url()).searchParams.get('task'), failed, 'the address names the task')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png') })
    await page.keyboard.press('Escape')
    await page.locator('#detail').waitFor({ state: 'hidden' })
  })

  it('finds a task by its pasted full TaskId and by its first 8 characters', async () => {
    for (const text of [failed, failed.slice(0, 8)]) {
      await search(text)
      assert.deepEqual(await visibleIds(), [failed], text)
    }
    await search('')
    assert.ok((await visibleIds()).length > 2)
  })

  it("opens a task's link in a new page, showing that task", async () => {
    const [opened] = await Promise.all([page.context().waitForEvent('page'), row(failed).locator('a.task-link').click()])
    await opened.waitForLoadState()
    assert.equal(new URL(opened.url()).searchParams.get('task'), failed)
    // The token stays in the tab it was given to: a new page may ask for it.
    await opened.locator('#app, #login').first().waitFor({ state: 'visible' })
    if (await opened.locator('#login').isVisible()) {
      await opened.locator('#login-token').fill(ADMIN_TOKEN)
      await opened.locator('#login button[type="submit"]').click()
    }
    await eventually(async () => ((await opened.locator('#detail-id').textContent()) === failed ? true : undefined))
    assert.equal(await opened.locator('#detail').isVisible(), true)
    await opened.close()
  })

  it('fits 25 or more finished tasks on a 1440×900 screen', async () => {
    await page.locator('#tabs button[data-state="succeeded"]').click()
    await eventually(async () => ((await visibleIds()).length === FINISHED ? true : undefined))
    const bottoms = await page.locator('#tasks tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { getBoundingClientRect(): { bottom: number } }).getBoundingClientRect().bottom))
    const fitting = bottoms.filter((bottom) => bottom <= 900).length
    assert.ok(fitting >= 25, `${fitting} rows fit`)
    assert.equal(new URL(page.url()).searchParams.get('state'), 'succeeded', 'the view is in the address')
    assert.match((await row((await visibleIds())[0]!).locator('.progress-text').textContent()) ?? '', /^146\.5 KiB$/)
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-finished.png') })
    await page.locator('#tabs button[data-state=""]').click()
    await eventually(async () => ((await visibleIds()).includes(running) ? true : undefined))
  })

  it('cancels the running task with a press held across a refresh: it ends cancelled, with no partial file left', async () => {
    const button = row(running).locator('button.cancel')
    await button.hover()
    await page.mouse.down()
    await refreshes(2)
    await page.mouse.up()
    await row(running).and(page.locator('[data-state="cancelled"]')).waitFor()
    assert.ok(dialogs.some((message) => message.includes(running)), 'the press asked for confirmation')
    assert.match((await row(running).locator('.reason').textContent()) ?? '', /^cancelled by operator$/)
    assert.match((await row(running).locator('.progress-text').textContent()) ?? '', /^stopped at [1-9]\d* % of 4\.0 MiB$/)
    const task = (await call(server, `/admin/api/tasks/${running}`, { token: ADMIN_TOKEN })).json
    assert.deepEqual([task.state, task.status, task.lastError.code], ['cancelled', 'FAILED', 'ERR_CANCELLED'])
    assert.deepEqual(await listFiles(join(server.dataDir, 'cdn', 'dash')).catch(() => []), [])
    assert.equal(await page.locator('#total-cancelled').textContent(), '1')
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-cancelled.png') })
  })

  it('re-runs every failed task of the view after confirming the count; the new task names the one it re-ran', async () => {
    await page.locator('#tabs button[data-state="failed"]').click()
    await eventually(async () => ((await visibleIds()).join() === failed ? true : undefined))
    await page.locator('#bulk-rerun').click()
    await eventually(() => (dialogs.some((message) => /^Re-run 1 task \(failed\) of this view\?$/.test(message)) ? true : undefined))
    await page.locator('#tabs button[data-state=""]').click()
    const rerunOf = page.locator('#tasks .rerun-of', { hasText: `re-run of ${failed.slice(0, 8)}` })
    await rerunOf.waitFor()
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-rerun.png') })
  })

  it('shows a purge as what it removes, without a source, an arrow or a bar', async () => {
    const purge = await new ApubiClient(server.url).purgeAsset('vod/small-0.ts')
    await taskWhen(server, purge, (t) => t.state === 'succeeded', ADMIN_TOKEN)
    await row(purge).and(page.locator('[data-state="succeeded"]')).waitFor()
    assert.equal(await row(purge).locator('.kind').textContent(), 'purge')
    assert.match((await row(purge).locator('.destination').textContent()) ?? '', /\/cdn\/vod\/small-0\.ts$/)
    assert.equal(await row(purge).locator('.arrow').textContent(), '')
    assert.match((await row(purge).locator('.progress-text').textContent()) ?? '', /removed$/)
    assert.equal(await row(purge).locator('progress').isVisible(), false)
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
