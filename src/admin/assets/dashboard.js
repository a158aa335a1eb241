// The apubi dashboard: plain DOM code, no framework, nothing fetched from elsewhere. It polls the admin
// API every second and updates the page in place: each row, field and cell is made once and then only
// its changed texts are set (`reconcile`, `setText`), so that selected text and a button under the
// pointer survive every refresh. Every text comes from the API (URLs already redacted there) and is
// set with textContent, never parsed as HTML.
'use strict'

const API = '/admin/api'
const TOKEN_KEY = 'apubi-admin-token'
const REFRESH_MS = 1000
const PAGE_SIZE = 50
const SPARK_POINTS = 60
const ACTIVE = ['queued', 'running', 'retry_wait']
const ENDED = new Set(['succeeded', 'failed', 'cancelled'])
const RANGES = { '15m': 15 * 60_000, '1h': 3_600_000, '24h': 86_400_000 }
/** The URL parameters a view is made of (shared by copying the address). */
const VIEW_PARAMS = ['state', 'kind', 'q', 'range', 'from', 'to', 'sort', 'offset', 'task']

const $ = (id) => document.getElementById(id)
const ui = {
  app: $('app'),
  login: $('login'),
  loginToken: $('login-token'),
  loginError: $('login-error'),
  status: $('status'),
  live: $('live-mark'),
  pause: $('pause'),
  filters: $('filters'),
  tabs: $('tabs'),
  rows: document.querySelector('#tasks tbody'),
  noTasks: $('no-tasks'),
  range: $('range'),
  newer: $('newer'),
  older: $('older'),
  detail: $('detail'),
  spark: document.querySelector('#spark polyline'),
}

const view = { offset: 0, total: 0, selected: null, role: null, timer: null, busy: false, paused: false, updatedAt: 0, rates: [] }

class Unauthorized extends Error {}

// ---- the token: from the address once (then dropped from it), kept for this tab only

function takeTokenFromAddress() {
  const url = new URL(location.href)
  const token = url.searchParams.get('token')
  if (token === null) return
  sessionStorage.setItem(TOKEN_KEY, token)
  url.searchParams.delete('token')
  history.replaceState(null, '', url.pathname + url.search + url.hash)
}

async function api(path, method = 'GET') {
  const token = sessionStorage.getItem(TOKEN_KEY)
  const response = await fetch(API + path, { method, cache: 'no-store', headers: token ? { Authorization: `Bearer ${token}` } : {} })
  const body = await response.json().catch(() => ({}))
  if (response.status === 401) throw new Unauthorized(body.error ? body.error.message : 'An admin token is required')
  if (!response.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`)
  return body
}

// ---- formatting

function bytes(n) {
  if (n === undefined || n === null) return ''
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

function duration(seconds) {
  if (seconds === undefined || seconds === null) return ''
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
const dayAndClock = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false })

/** Today's times as a clock, older ones with their day: one short line either way. */
function shortTime(iso) {
  if (!iso) return ''
  const at = new Date(iso)
  return at.toDateString() === new Date().toDateString() ? clock.format(at) : dayAndClock.format(at)
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : ''
}

function el(tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

/** Sets a text only when it changed: a node left alone keeps the reader's selection. */
function setText(node, text) {
  const value = text === undefined || text === null ? '' : String(text)
  if (node.textContent !== value) node.textContent = value
}

function setAttr(node, name, value) {
  if (value === undefined || value === null) node.removeAttribute(name)
  else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, String(value))
}

function setClass(node, className) {
  if (node.className !== className) node.className = className
}

/**
 * Brings `parent`'s children to `items`, in order, by key: a child whose key stays is kept and only
 * updated, and moved only when it is out of place; new keys are created, gone ones removed.
 */
function reconcile(parent, items, keyOf, create, update) {
  const keys = new Set(items.map(keyOf))
  const existing = new Map()
  // Gone ones first, so that a row leaving from above does not make the rows below it move.
  for (const node of [...parent.children]) {
    if (keys.has(node.dataset.key)) existing.set(node.dataset.key, node)
    else node.remove()
  }
  let cursor = parent.firstElementChild
  for (const item of items) {
    const key = keyOf(item)
    let node = existing.get(key)
    if (!node) {
      node = create(item)
      node.dataset.key = key
    }
    update(node, item)
    if (node === cursor) cursor = cursor.nextElementSibling
    else parent.insertBefore(node, cursor)
  }
}

function setStatus(text, error = false) {
  setText(ui.status, text)
  setClass(ui.status, error ? 'error' : '')
  setAttr(ui.status, 'title', text || undefined)
}

const stateLabel = (state) => (state === 'retry_wait' ? 'retrying' : state)

/** An error for people: what the code means, then the detail. */
function reasonText(error) {
  return error ? `${error.title ?? error.code}: ${error.message}` : ''
}

function percent(done, total) {
  return `${Math.floor((done / total) * 100)} %`
}

// ---- the task table: one row per task, kept across refreshes

function createRow(task) {
  const row = el('tr')
  row.dataset.taskId = task.id
  const cell = (className) => row.appendChild(el('td', className))
  const id = cell('id')
  const link = id.appendChild(el('a', 'task-link id', task.id.slice(0, 8)))
  link.href = `${location.pathname}?task=${encodeURIComponent(task.id)}`
  link.target = '_blank'
  link.title = `${task.id} (opens in a new page)`
  link.addEventListener('click', (event) => event.stopPropagation())
  const state = cell('state-cell')
  state.append(el('span', 'state'), el('span', 'attempt'))
  const where = cell('where')
  const line = where.appendChild(el('div', 'line'))
  line.append(el('span', 'kind'), el('span', 'source'), el('span', 'arrow'), el('span', 'destination'))
  const line2 = where.appendChild(el('div', 'line2'))
  line2.append(el('span', 'rerun-of'), el('span', 'why'))
  const progress = cell('progress')
  progress.append(el('progress'), el('span', 'progress-text'))
  cell('speed num')
  cell('eta num')
  cell('created')
  cell('duration num')
  const actions = cell('actions')
  const cancel = actions.appendChild(el('button', 'danger cancel', 'Cancel'))
  const rerun = actions.appendChild(el('button', 'rerun', 'Re-run'))
  for (const button of [cancel, rerun]) button.type = 'button'
  // The task's id is read when clicked: the row, and its buttons, outlive many refreshes.
  cancel.addEventListener('click', (event) => {
    event.stopPropagation()
    cancelTask(row.dataset.taskId)
  })
  rerun.addEventListener('click', (event) => {
    event.stopPropagation()
    rerunTask(row.dataset.taskId)
  })
  row.addEventListener('click', () => {
    // A click that ends a text selection is for copying, not for opening the task.
    if (String(getSelection()).length > 0) return
    select(row.dataset.taskId)
  })
  return row
}

function updateRow(row, task) {
  const [, stateCell, where, progressCell, speed, eta, created, took, actions] = row.children
  setAttr(row, 'data-state', task.state)
  row.classList.toggle('selected', task.id === view.selected)
  const chip = stateCell.querySelector('.state')
  setClass(chip, `state state-${task.state}`)
  setText(chip, stateLabel(task.state))
  setText(stateCell.querySelector('.attempt'), task.state === 'retry_wait' || (task.attempts > 1 && !ENDED.has(task.state)) ? `${task.attempts}/${task.maxAttempts}` : '')

  const purge = task.kind === 'purge'
  setText(where.querySelector('.kind'), task.kind)
  setText(where.querySelector('.source'), purge ? '' : task.source)
  setText(where.querySelector('.arrow'), purge ? '' : '→')
  setText(where.querySelector('.destination'), purge ? task.target : task.destination)
  setAttr(where, 'title', purge ? `purge ${task.target}` : `${task.source ?? ''} → ${task.destination}`)
  // Below: which task this one re-runs, and why it failed, is cancelled or will retry.
  const line2 = where.querySelector('.line2')
  const rerunOf = task.rerunOf ? `re-run of ${task.rerunOf.slice(0, 8)}` : ''
  let why = ''
  let whyClass = 'why reason'
  if (task.state === 'failed') why = reasonText(task.lastError)
  else if (task.state === 'cancelled') [why, whyClass] = [task.lastError ? task.lastError.message : 'cancelled', 'why reason quiet']
  else if (task.state === 'retry_wait' && task.lastError) why = `will retry: ${reasonText(task.lastError)}`
  setText(line2.firstChild, rerunOf)
  setText(line2.lastChild, why)
  setClass(line2.lastChild, whyClass)
  setAttr(line2, 'title', [rerunOf, why].filter(Boolean).join(' · ') || undefined)
  line2.hidden = rerunOf === '' && why === ''

  updateProgress(progressCell, task)
  setText(speed, task.bytesPerSecond !== undefined ? `${bytes(task.bytesPerSecond)}/s` : '')
  setText(eta, duration(task.etaSeconds))
  setText(created, shortTime(task.createdAt))
  setAttr(created, 'title', time(task.createdAt))
  setText(took, duration(task.durationSeconds))
  setAttr(took, 'title', task.finishedAt ? `finished ${time(task.finishedAt)}` : 'not ended yet')
  const operator = view.role === 'operator'
  actions.querySelector('.cancel').hidden = !operator || ENDED.has(task.state)
  actions.querySelector('.rerun').hidden = !operator || (task.state !== 'failed' && task.state !== 'cancelled')
}

/** A bar while a task moves; once ended, one line of what it did (or how far it got). */
function updateProgress(cell, task) {
  const { bytesDone, bytesTotal, filesDone, filesTotal } = task.progress
  const bar = cell.querySelector('progress')
  const files = filesTotal > 1 ? `${filesDone}/${filesTotal} files` : ''
  let text
  if (task.state === 'succeeded') {
    text = task.kind === 'purge' ? (filesTotal > 0 ? `${filesDone} removed` : 'removed') : [bytes(bytesTotal), filesTotal > 1 ? `${filesTotal} files` : ''].filter(Boolean).join(' · ')
  } else if (ENDED.has(task.state)) {
    text = bytesTotal > 0 ? `stopped at ${percent(bytesDone, bytesTotal)} of ${bytes(bytesTotal)}` : files && `stopped at ${files}`
  } else if (bytesTotal > 0) {
    text = [percent(bytesDone, bytesTotal), `of ${bytes(bytesTotal)}`, files].filter(Boolean).join(' ')
  } else {
    text = files
  }
  setText(cell.querySelector('.progress-text'), text)
  setAttr(cell, 'title', bytesTotal > 0 ? `${bytes(bytesDone)} of ${bytes(bytesTotal)}${filesTotal > 0 ? ` · ${filesDone}/${filesTotal} files` : ''}` : undefined)
  bar.hidden = ENDED.has(task.state)
  if (bytesTotal > 0) {
    setAttr(bar, 'max', bytesTotal)
    bar.value = Math.min(bytesDone, bytesTotal)
  } else if (filesTotal > 0) {
    setAttr(bar, 'max', filesTotal)
    bar.value = filesDone
  } else if (task.state === 'running') {
    bar.removeAttribute('value') // moving, size not known yet
  } else {
    setAttr(bar, 'max', 1)
    bar.value = 0
  }
}

function renderTasks(page) {
  reconcile(ui.rows, page.tasks, (task) => task.id, createRow, updateRow)
  view.total = page.total
  ui.noTasks.hidden = page.tasks.length > 0
  setText(ui.range, page.total === 0 ? '' : `${page.offset + 1}–${page.offset + page.tasks.length} of ${page.total}`)
  ui.newer.disabled = page.offset === 0
  ui.older.disabled = page.offset + page.tasks.length >= page.total
}

// ---- the header: totals, instance, readiness, throughput

function renderOverview(overview) {
  setText($('total-running'), overview.running)
  setText($('total-queued'), overview.queued)
  setText($('total-failed'), overview.failedLastHour)
  setClass($('total-failed'), overview.failedLastHour > 0 ? 'bad' : '')
  setText($('total-cancelled'), overview.cancelledLastHour)
  setText($('total-succeeded'), overview.succeededToday)
  setText($('total-bytes'), bytes(overview.bytesToday))
  setText($('total-rate'), `${bytes(overview.bytesPerSecond)}/s`)
  renderBandwidth(overview.bandwidth)
  setText($('instance'), overview.instance ? `${overview.instance.host} · v${overview.instance.version}` : '')
  const ready = $('ready')
  const failing = Object.entries(overview.checks ?? {}).filter(([, passes]) => !passes).map(([name]) => name)
  setText(ready, overview.ready ? 'ready' : `not ready: ${failing.join(', ')}`)
  setClass(ready, overview.ready ? 'chip ok' : 'chip bad')
  const counts = { ...overview.byState }
  counts.active = ACTIVE.reduce((sum, state) => sum + counts[state], 0)
  counts.all = Object.values(overview.byState).reduce((sum, n) => sum + n, 0)
  for (const badge of ui.tabs.querySelectorAll('[data-count]')) setText(badge, counts[badge.dataset.count] ?? '')
  view.rates.push(overview.bytesPerSecond)
  if (view.rates.length > SPARK_POINTS) view.rates.shift()
  drawSparkline()
}

// The overall cap in force now; the timetables and per-host caps in its tooltip.
function renderBandwidth(bandwidth) {
  const cell = $('total-bandwidth')
  const overall = bandwidth?.overall
  setText(cell, overall?.bytesPerSecond == null ? 'none' : `${bytes(overall.bytesPerSecond)}/s`)
  const hosts = Object.entries(bandwidth?.hosts ?? {}).map(([host, cap]) => `${host}: ${cap.schedule}`)
  setAttr(cell, 'title', [overall ? `overall: ${overall.schedule}${overall.changed ? ' (changed at run time)' : ''}` : 'overall: none', ...hosts].join('\n'))
}

function drawSparkline() {
  const top = Math.max(1, ...view.rates)
  const step = 90 / (SPARK_POINTS - 1)
  const offset = SPARK_POINTS - view.rates.length
  setAttr(ui.spark, 'points', view.rates.map((rate, i) => `${((offset + i) * step).toFixed(1)},${(21 - (rate / top) * 20).toFixed(1)}`).join(' '))
}

/** "live · updated 2 s ago", or paused, or stale when refreshes stopped arriving. */
function renderLiveMark() {
  const ago = view.updatedAt ? Math.max(0, Math.round((Date.now() - view.updatedAt) / 1000)) : undefined
  const when = ago === undefined ? '' : ` · updated ${ago} s ago`
  if (view.paused) {
    setText(ui.live, `paused${when}`)
    setClass(ui.live, 'paused')
  } else {
    setText(ui.live, `live${when}`)
    setClass(ui.live, ago !== undefined && ago > 5 ? 'stale' : '')
  }
}
setInterval(renderLiveMark, 1000)

// ---- the detail, beside the table

function fieldRows(parent, rows) {
  reconcile(
    parent,
    rows,
    (cells) => cells.key,
    (cells) => {
      const row = el('tr')
      for (let i = 0; i < cells.length; i++) row.appendChild(el('td'))
      return row
    },
    (row, cells) => {
      cells.forEach(([text, className], i) => {
        setText(row.children[i], text)
        setClass(row.children[i], className ?? '')
      })
    },
  )
}

function keyed(key, cells) {
  cells.key = key
  return cells
}

/** `["ok", "ok", "failed"]` as "2 requests ok, 1 failed". */
function countedOutcomes(outcomes) {
  const ok = outcomes.filter((o) => o === 'ok').length
  const failed = outcomes.length - ok
  return `${outcomes.length} request${outcomes.length === 1 ? '' : 's'}: ${ok} ok${failed > 0 ? `, ${failed} failed` : ''}`
}

function renderDetail(task) {
  setText($('detail-id'), task.id)
  const state = $('detail-state')
  setText(state, stateLabel(task.state))
  setClass(state, `state state-${task.state}`)
  setAttr($('detail-link'), 'href', `${location.pathname}?task=${encodeURIComponent(task.id)}`)
  $('detail-cancel').hidden = view.role !== 'operator' || ENDED.has(task.state)
  $('detail-rerun').hidden = view.role !== 'operator' || (task.state !== 'failed' && task.state !== 'cancelled')
  const { bytesDone, bytesTotal, filesDone, filesTotal } = task.progress
  const fields = [
    ['Status (GetTaskStatus)', task.status],
    ['Kind', task.kind],
    ['Source', task.source],
    ['Destination', task.destination],
    ['Target', task.target],
    ['Final destination', task.finalDestination],
    ['Reason', task.lastError && reasonText(task.lastError)],
    ['Error code', task.lastError && task.lastError.code],
    ['Re-run of', task.rerunOf],
    ['Attempts', `${task.attempts} of ${task.maxAttempts}`],
    ['Bytes', bytesTotal > 0 ? `${bytes(bytesDone)} of ${bytes(bytesTotal)}` : undefined],
    ['Files', filesTotal > 0 ? `${filesDone} of ${filesTotal}` : undefined],
    ['Package verified', task.package && `${task.package.manifests} manifests, ${task.package.renditions} renditions, ${task.package.referencedFiles} referenced files${task.package.durationSeconds !== undefined ? `, ${duration(task.package.durationSeconds)}` : ''}`],
    ['Step', task.step === 'invalidating' ? 'Telling caches and CDNs' : undefined],
    ['Origins', task.origins && task.origins.map((o) => `${o.origin}: ${o.state}${o.error ? ` (${o.error.code})` : ''}`).join(' · ')],
    ['Invalidations', task.invalidations && task.invalidations.length > 0 ? countedOutcomes(task.invalidations.map((i) => (i.ok ? 'ok' : 'failed'))) : undefined],
    ['Notifications', task.notifications && task.notifications.length > 0 ? task.notifications.map((n) => `${n.receiver} (${n.event}): ${n.state}`).join(' · ') : undefined],
    ['Speed', task.bytesPerSecond !== undefined ? `${bytes(task.bytesPerSecond)}/s` : undefined],
    ['ETA', task.etaSeconds !== undefined ? duration(task.etaSeconds) : undefined],
    ['Created', time(task.createdAt)],
    ['Started', time(task.startedAt)],
    ['Finished', time(task.finishedAt)],
    ['Next attempt', time(task.nextAttemptAt)],
    ['Waited', duration(task.timings.waitedSeconds)],
    ['Duration', duration(task.durationSeconds)],
  ].filter(([, value]) => value !== undefined && value !== '')
  reconcile(
    $('detail-fields'),
    fields,
    ([name]) => name,
    ([name]) => {
      const pair = el('div')
      pair.append(el('dt', '', name), el('dd', name === 'Reason' ? 'reason' : ''))
      if (name === 'Re-run of') {
        pair.lastChild.classList.add('id')
        pair.lastChild.addEventListener('click', () => select(pair.lastChild.textContent))
        pair.lastChild.style.cursor = 'pointer'
      }
      return pair
    },
    (pair, [, value]) => setText(pair.lastChild, value),
  )
  const none = (rows, columns) => (rows.length > 0 ? rows : [keyed('none', [['none', 'empty'], ...Array(columns - 1).fill([''])])])
  fieldRows(document.querySelector('#detail-errors tbody'), none(task.attemptHistory.map((e, i) => keyed(`${i}`, [[e.attempt], [time(e.at)], [e.code, 'mono'], [e.message, 'reason']])), 4))
  fieldRows(
    document.querySelector('#detail-files tbody'),
    none(task.files.map((f) => keyed(f.path, [[f.path, 'mono'], [bytes(f.size)], [f.md5, 'mono'], [f.sha256, 'mono'], [f.verifiedBy], [f.resumedFrom > 0 ? bytes(f.resumedFrom) : '']])), 6),
  )
  fieldRows(document.querySelector('#detail-metadata tbody'), none(task.metadata.map((m, i) => keyed(`${i}`, [[m.key], [m.value]])), 2))
  ui.detail.hidden = false
}

function select(id) {
  view.selected = id
  for (const row of ui.rows.children) row.classList.toggle('selected', row.dataset.taskId === id)
  saveView()
  refresh()
}

function closeDetail() {
  view.selected = null
  ui.detail.hidden = true
  for (const row of ui.rows.children) row.classList.remove('selected')
  saveView()
}

// ---- actions, one task or the whole view

async function cancelTask(id) {
  if (!confirm(`Cancel task ${id}? Its work stops; the WFM reads FAILED.`)) return
  setStatus(`Cancelling ${id.slice(0, 8)}…`)
  try {
    await api(`/tasks/${encodeURIComponent(id)}/cancel`, 'POST')
    setStatus(`Task ${id.slice(0, 8)} cancelled`)
  } catch (e) {
    setStatus(e.message, true)
  }
  refresh()
}

async function rerunTask(id) {
  try {
    const result = await api(`/tasks/${encodeURIComponent(id)}/rerun`, 'POST')
    setStatus(result.created ? `Task ${id.slice(0, 8)} re-run as ${result.id.slice(0, 8)}` : `Already running as task ${result.id.slice(0, 8)}`)
    view.selected = result.id
    saveView()
  } catch (e) {
    setStatus(e.message, true)
  }
  refresh()
}

/** The states of the view a bulk action applies to; as the server computes them (OperatorService). */
function bulkStates(applies, fallback) {
  const asked = String(new FormData(ui.filters).get('state') || '')
  const states = asked ? asked.split(',') : fallback
  return states.filter((state) => applies.includes(state))
}

async function bulk(action, applies, fallback, verb) {
  const states = bulkStates(applies, fallback)
  const params = viewQuery()
  params.delete('offset')
  params.set('state', states.join(','))
  try {
    const count = states.length === 0 ? 0 : (await api(`/tasks?${params}&limit=1`)).total
    if (count === 0) return setStatus(`Nothing to ${verb} in this view`)
    if (!confirm(`${verb[0].toUpperCase()}${verb.slice(1)} ${count} task${count === 1 ? '' : 's'} (${states.map(stateLabel).join(', ')}) of this view?`)) return
    params.set('limit', String(count))
    setStatus(`${verb}: ${count} tasks…`)
    const result = await api(`/bulk/${action}?${params}`, 'POST')
    setStatus(`${result.done.length} ${verb === 'cancel' ? 'cancelled' : 're-run'}${result.refused.length ? `, ${result.refused.length} refused: ${result.refused[0].message}` : ''}`, result.refused.length > 0)
  } catch (e) {
    setStatus(e.message, true)
  }
  refresh()
}

$('bulk-rerun').addEventListener('click', () => bulk('rerun', ['failed', 'cancelled'], ['failed'], 're-run'))
$('bulk-cancel').addEventListener('click', () => bulk('cancel', ACTIVE, ACTIVE, 'cancel'))

// ---- filters, kept in the address so that a view can be shared

/** The API query of the view: filters, order and page. */
function viewQuery() {
  const form = new FormData(ui.filters)
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(view.offset) })
  for (const name of ['state', 'kind', 'q']) {
    const value = String(form.get(name) ?? '').trim()
    if (value) params.set(name, value)
  }
  const range = String(form.get('range') ?? '')
  if (RANGES[range]) params.set('from', new Date(Date.now() - RANGES[range]).toISOString())
  if (range === 'custom') {
    for (const name of ['from', 'to']) {
      const value = String(form.get(name) ?? '')
      if (value) params.set(name, new Date(value).toISOString())
    }
  }
  const [sort, order] = String(form.get('sort') || 'active').split(':')
  if (sort !== 'active') params.set('sort', sort)
  if (order) params.set('order', order)
  return params
}

function saveView() {
  const form = new FormData(ui.filters)
  const url = new URL(location.href)
  for (const name of VIEW_PARAMS) url.searchParams.delete(name)
  for (const name of ['state', 'kind', 'q', 'range', 'sort']) {
    const value = String(form.get(name) ?? '').trim()
    if (value && !(name === 'sort' && value === 'active')) url.searchParams.set(name, value)
  }
  if (form.get('range') === 'custom') for (const name of ['from', 'to']) if (form.get(name)) url.searchParams.set(name, String(form.get(name)))
  if (view.offset > 0) url.searchParams.set('offset', String(view.offset))
  if (view.selected) url.searchParams.set('task', view.selected)
  if (url.href !== location.href) history.replaceState(null, '', url.pathname + url.search + url.hash)
}

function loadView() {
  const params = new URL(location.href).searchParams
  for (const name of ['state', 'kind', 'q', 'range', 'from', 'to', 'sort']) {
    const field = ui.filters.elements.namedItem(name)
    if (field && params.has(name)) field.value = params.get(name)
  }
  view.offset = Number(params.get('offset')) || 0
  view.selected = params.get('task') || null
  showFilters()
}

function showFilters() {
  const form = new FormData(ui.filters)
  $('custom-range').hidden = form.get('range') !== 'custom'
  const state = String(form.get('state') ?? '')
  for (const tab of ui.tabs.querySelectorAll('button')) setAttr(tab, 'aria-selected', String(tab.dataset.state === state))
}

function filtersChanged() {
  view.offset = 0
  showFilters()
  saveView()
  refresh()
}

let typing
ui.filters.addEventListener('input', (event) => {
  clearTimeout(typing)
  // Typing waits for a pause; a choice in a list applies at once.
  typing = setTimeout(filtersChanged, event.target.name === 'q' ? 250 : 0)
})
ui.filters.addEventListener('submit', (event) => event.preventDefault())
ui.tabs.addEventListener('click', (event) => {
  const tab = event.target.closest('button')
  if (!tab) return
  ui.filters.elements.namedItem('state').value = tab.dataset.state
  filtersChanged()
})
ui.newer.addEventListener('click', () => {
  view.offset = Math.max(0, view.offset - PAGE_SIZE)
  saveView()
  refresh()
})
ui.older.addEventListener('click', () => {
  view.offset += PAGE_SIZE
  saveView()
  refresh()
})
$('detail-close').addEventListener('click', closeDetail)
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !ui.detail.hidden) closeDetail()
})
$('detail-cancel').addEventListener('click', () => view.selected && cancelTask(view.selected))
$('detail-rerun').addEventListener('click', () => view.selected && rerunTask(view.selected))
ui.pause.addEventListener('click', () => {
  view.paused = !view.paused
  setText(ui.pause, view.paused ? 'Resume' : 'Pause')
  setAttr(ui.pause, 'aria-pressed', String(view.paused))
  renderLiveMark()
  if (view.paused) clearTimeout(view.timer)
  else refresh()
})

// ---- the refresh loop

/** Where "today" starts for this browser, so that the header counts the operator's day. */
function startOfToday() {
  const day = new Date()
  day.setHours(0, 0, 0, 0)
  return day.getTime()
}

async function refresh() {
  clearTimeout(view.timer)
  if (view.busy) return
  view.busy = true
  try {
    const selected = view.selected
    const [page, overview, detail] = await Promise.all([
      api(`/tasks?${viewQuery()}`),
      api(`/overview?day=${startOfToday()}`),
      selected ? api(`/tasks/${encodeURIComponent(selected)}`).catch(() => undefined) : undefined,
    ])
    renderTasks(page)
    renderOverview(overview)
    if (detail && view.selected === detail.id) renderDetail(detail)
    if (ui.status.className === 'error' && ui.status.textContent.startsWith('Cannot reach')) setStatus('')
    view.updatedAt = Date.now()
    ui.status.dataset.updated = new Date(view.updatedAt).toISOString()
    renderLiveMark()
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message)
    setStatus(`Cannot reach the server: ${e.message}`, true)
  } finally {
    view.busy = false
  }
  if (!view.paused) view.timer = setTimeout(refresh, REFRESH_MS)
}

function showLogin(message) {
  clearTimeout(view.timer)
  ui.app.hidden = true
  ui.login.hidden = false
  ui.loginError.textContent = sessionStorage.getItem(TOKEN_KEY) ? message : ''
  ui.loginToken.focus()
}

ui.login.addEventListener('submit', (event) => {
  event.preventDefault()
  sessionStorage.setItem(TOKEN_KEY, ui.loginToken.value.trim())
  ui.loginToken.value = ''
  start()
})

async function start() {
  try {
    view.role = (await api('/session')).role
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message)
    setStatus(`Cannot reach the server: ${e.message}`, true)
    view.timer = setTimeout(start, REFRESH_MS)
    return
  }
  ui.login.hidden = true
  ui.app.hidden = false
  $('bulk').hidden = view.role !== 'operator'
  if (view.role !== 'operator') setStatus('read-only')
  refresh()
}

takeTokenFromAddress()
loadView()
start()
