// The apubi dashboard: plain DOM code, no framework, nothing fetched from elsewhere. It polls the admin
// API every second and updates the page in place. Every text comes from the API (URLs already
// redacted there) and is set with textContent, never parsed as HTML.
'use strict'

const API = '/admin/api'
const TOKEN_KEY = 'apubi-admin-token'
const REFRESH_MS = 1000
const PAGE_SIZE = 50
const ENDED = new Set(['succeeded', 'failed'])

const ui = {
  app: document.getElementById('app'),
  login: document.getElementById('login'),
  loginToken: document.getElementById('login-token'),
  loginError: document.getElementById('login-error'),
  status: document.getElementById('status'),
  filters: document.getElementById('filters'),
  rows: document.querySelector('#tasks tbody'),
  noTasks: document.getElementById('no-tasks'),
  range: document.getElementById('range'),
  newer: document.getElementById('newer'),
  older: document.getElementById('older'),
  detail: document.getElementById('detail'),
}

const view = { offset: 0, total: 0, selected: null, role: null, timer: null, busy: false }

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
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
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

function setStatus(text, error = false) {
  ui.status.textContent = text
  ui.status.className = error ? 'error' : ''
}

// ---- the task table, updated in place row by row

function progressCell(cell, task) {
  const { bytesDone, bytesTotal, filesDone, filesTotal } = task.progress
  let bar = cell.querySelector('progress')
  let text = cell.querySelector('.progress-text')
  if (!bar) {
    bar = cell.appendChild(el('progress'))
    text = cell.appendChild(el('div', 'progress-text'))
  }
  if (bytesTotal > 0) {
    bar.max = bytesTotal
    bar.value = Math.min(bytesDone, bytesTotal)
  } else if (filesTotal > 0) {
    bar.max = filesTotal
    bar.value = filesDone
  } else if (task.state === 'succeeded') {
    bar.max = 1
    bar.value = 1
  } else if (task.state === 'running') {
    bar.removeAttribute('value') // moving, size not known yet
  } else {
    bar.max = 1
    bar.value = 0
  }
  const parts = []
  if (bytesTotal > 0) parts.push(`${bytes(bytesDone)} / ${bytes(bytesTotal)} (${Math.floor((bytesDone / bytesTotal) * 100)} %)`)
  if (filesTotal > 0) parts.push(`${filesDone}/${filesTotal} files`)
  text.textContent = parts.join(' · ')
}

function actionButtons(task) {
  const cell = el('td', 'actions')
  if (view.role !== 'operator') return cell
  if (!ENDED.has(task.state)) {
    const cancel = cell.appendChild(el('button', 'danger cancel', 'Cancel'))
    cancel.type = 'button'
    cancel.addEventListener('click', (event) => {
      event.stopPropagation()
      cancelTask(task.id)
    })
  } else if (task.state === 'failed') {
    const rerun = cell.appendChild(el('button', 'rerun', 'Re-run'))
    rerun.type = 'button'
    rerun.addEventListener('click', (event) => {
      event.stopPropagation()
      rerunTask(task.id)
    })
  }
  return cell
}

function fillRow(row, task) {
  const cells = [
    el('td', 'id', task.id.slice(0, 8)),
    el('td', 'kind', task.kind),
    el('td'),
    el('td', 'progress'),
    el('td', 'speed', task.bytesPerSecond !== undefined ? `${bytes(task.bytesPerSecond)}/s` : ''),
    el('td', 'eta', duration(task.etaSeconds)),
    el('td', 'where'),
    el('td', 'created muted', time(task.createdAt)),
    actionButtons(task),
  ]
  cells[0].title = task.id
  cells[2].appendChild(el('span', `state state-${task.state}`, task.state.replace('_', ' ')))
  if (task.state === 'retry_wait' || task.attempts > 1) cells[2].appendChild(el('div', 'muted', `attempt ${task.attempts}/${task.maxAttempts}`))
  // The progress cell is kept across refreshes, so its bar moves rather than blinks.
  const kept = row.querySelector('td.progress')
  if (kept) cells[3] = kept
  progressCell(cells[3], task)
  cells[6].appendChild(el('div', 'source', task.source ?? ''))
  cells[6].appendChild(el('div', 'destination', `→ ${task.destination}`))
  if (task.state === 'failed' && task.lastError) cells[6].appendChild(el('div', 'reason', `${task.lastError.code}: ${task.lastError.message}`))
  else if (task.state === 'retry_wait' && task.lastError) cells[6].appendChild(el('div', 'reason', `will retry: ${task.lastError.message}`))
  row.replaceChildren(...cells)
  row.dataset.state = task.state
}

function renderTasks(page) {
  const existing = new Map([...ui.rows.children].map((row) => [row.dataset.taskId, row]))
  for (const task of page.tasks) {
    let row = existing.get(task.id)
    if (!row) {
      row = el('tr')
      row.dataset.taskId = task.id
      row.addEventListener('click', () => select(task.id))
    }
    existing.delete(task.id)
    fillRow(row, task)
    row.classList.toggle('selected', task.id === view.selected)
    ui.rows.appendChild(row) // moves an existing row into the new order
  }
  for (const row of existing.values()) row.remove()
  view.total = page.total
  ui.noTasks.hidden = page.tasks.length > 0
  ui.range.textContent = page.total === 0 ? '' : `${page.offset + 1}–${page.offset + page.tasks.length} of ${page.total}`
  ui.newer.disabled = page.offset === 0
  ui.older.disabled = page.offset + page.tasks.length >= page.total
}

function renderOverview(overview) {
  document.getElementById('total-queued').textContent = String(overview.queued)
  document.getElementById('total-running').textContent = String(overview.running)
  document.getElementById('total-failed').textContent = String(overview.failedLastHour)
  document.getElementById('total-rate').textContent = `${bytes(overview.bytesPerSecond)}/s`
  renderBandwidth(overview.bandwidth)
}

// The overall cap in the header; the timetables and per-host caps in its tooltip.
function renderBandwidth(bandwidth) {
  const cell = document.getElementById('total-bandwidth')
  const overall = bandwidth?.overall
  cell.textContent = overall?.bytesPerSecond == null ? 'none' : `${bytes(overall.bytesPerSecond)}/s`
  const hosts = Object.entries(bandwidth?.hosts ?? {}).map(([host, cap]) => `${host}: ${cap.schedule}`)
  cell.title = [overall ? `overall: ${overall.schedule}${overall.changed ? ' (changed at run time)' : ''}` : 'overall: none', ...hosts].join('\n')
}

// ---- the detail view

function rowsOf(table, rows, columns) {
  const body = table.querySelector('tbody')
  if (rows.length === 0) {
    const empty = el('td', 'empty', 'none')
    empty.colSpan = columns
    body.replaceChildren(el('tr'))
    body.firstChild.appendChild(empty)
    return
  }
  body.replaceChildren(
    ...rows.map((cells) => {
      const row = el('tr')
      for (const [text, className] of cells) row.appendChild(el('td', className, text === undefined ? '' : String(text)))
      return row
    }),
  )
}

function renderDetail(task) {
  document.getElementById('detail-id').textContent = task.id
  const state = document.getElementById('detail-state')
  state.textContent = task.state.replace('_', ' ')
  state.className = `state state-${task.state}`
  document.getElementById('detail-cancel').hidden = view.role !== 'operator' || ENDED.has(task.state)
  document.getElementById('detail-rerun').hidden = view.role !== 'operator' || task.state !== 'failed'
  const { bytesDone, bytesTotal, filesDone, filesTotal } = task.progress
  const fields = [
    ['Status (GetTaskStatus)', task.status],
    ['Kind', task.kind],
    ['Source', task.source],
    ['Destination', task.destination],
    ['Target', task.target],
    ['Final destination', task.finalDestination],
    ['Reason', task.lastError && `${task.lastError.code}: ${task.lastError.message}`],
    ['Attempts', `${task.attempts} of ${task.maxAttempts}`],
    ['Bytes', bytesTotal > 0 ? `${bytes(bytesDone)} of ${bytes(bytesTotal)}` : undefined],
    ['Files', filesTotal > 0 ? `${filesDone} of ${filesTotal}` : undefined],
    ['Speed', task.bytesPerSecond !== undefined ? `${bytes(task.bytesPerSecond)}/s` : undefined],
    ['ETA', task.etaSeconds !== undefined ? duration(task.etaSeconds) : undefined],
    ['Created', time(task.createdAt)],
    ['Started', time(task.startedAt)],
    ['Finished', time(task.finishedAt)],
    ['Next attempt', time(task.nextAttemptAt)],
    ['Waited', duration(task.timings.waitedSeconds)],
    ['Elapsed', duration(task.timings.elapsedSeconds)],
  ]
  const list = document.getElementById('detail-fields')
  list.replaceChildren()
  for (const [name, value] of fields) {
    if (value === undefined || value === '') continue
    list.append(el('dt', '', name), el('dd', name === 'Reason' ? 'reason' : '', value))
  }
  rowsOf(document.getElementById('detail-errors'), task.attemptHistory.map((e) => [[e.attempt], [time(e.at)], [e.code, 'mono'], [e.message, 'reason']]), 4)
  rowsOf(
    document.getElementById('detail-files'),
    task.files.map((f) => [[f.path, 'mono'], [bytes(f.size)], [f.md5, 'mono'], [f.sha256, 'mono'], [f.verifiedBy], [f.resumedFrom > 0 ? bytes(f.resumedFrom) : '']]),
    6,
  )
  rowsOf(document.getElementById('detail-metadata'), task.metadata.map((m) => [[m.key], [m.value]]), 2)
  ui.detail.hidden = false
}

function select(id) {
  view.selected = id
  for (const row of ui.rows.children) row.classList.toggle('selected', row.dataset.taskId === id)
  refresh()
}

// ---- actions

async function cancelTask(id) {
  if (!confirm(`Cancel task ${id}? Its work stops and it ends FAILED.`)) return
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
    setStatus(result.created ? `Re-run as task ${result.id.slice(0, 8)}` : `Already running as task ${result.id.slice(0, 8)}`)
    view.selected = result.id
  } catch (e) {
    setStatus(e.message, true)
  }
  refresh()
}

// ---- filters and paging

function filterQuery() {
  const form = new FormData(ui.filters)
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(view.offset) })
  for (const name of ['state', 'kind', 'q']) {
    const value = String(form.get(name) ?? '').trim()
    if (value) params.set(name, value)
  }
  for (const name of ['from', 'to']) {
    const value = String(form.get(name) ?? '')
    if (value) params.set(name, new Date(value).toISOString())
  }
  return params.toString()
}

let typing
ui.filters.addEventListener('input', () => {
  clearTimeout(typing)
  typing = setTimeout(() => {
    view.offset = 0
    refresh()
  }, 250)
})
ui.filters.addEventListener('submit', (event) => event.preventDefault())
ui.newer.addEventListener('click', () => {
  view.offset = Math.max(0, view.offset - PAGE_SIZE)
  refresh()
})
ui.older.addEventListener('click', () => {
  view.offset += PAGE_SIZE
  refresh()
})
document.getElementById('detail-close').addEventListener('click', () => {
  view.selected = null
  ui.detail.hidden = true
  for (const row of ui.rows.children) row.classList.remove('selected')
})
document.getElementById('detail-cancel').addEventListener('click', () => view.selected && cancelTask(view.selected))
document.getElementById('detail-rerun').addEventListener('click', () => view.selected && rerunTask(view.selected))

// ---- the refresh loop

async function refresh() {
  clearTimeout(view.timer)
  if (view.busy) return
  view.busy = true
  try {
    const selected = view.selected
    const [page, overview, detail] = await Promise.all([
      api(`/tasks?${filterQuery()}`),
      api('/overview'),
      selected ? api(`/tasks/${encodeURIComponent(selected)}`).catch(() => undefined) : undefined,
    ])
    renderTasks(page)
    renderOverview(overview)
    if (detail && view.selected === detail.id) renderDetail(detail)
    if (ui.status.className === 'error') setStatus('')
    ui.status.dataset.updated = new Date().toISOString()
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message)
    setStatus(`Cannot reach the server: ${e.message}`, true)
  } finally {
    view.busy = false
  }
  view.timer = setTimeout(refresh, REFRESH_MS)
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
  if (view.role !== 'operator') setStatus('read-only')
  refresh()
}

takeTokenFromAddress()
start()
