/* global document, fetch, setTimeout, clearTimeout, setInterval, clearInterval, performance, confirm */
// The admin status page: polls /routes while the tab is visible and moves the
// countdowns every second. Text goes in with textContent only: route names and
// error messages come from config and token endpoints, never markup.
'use strict'

const POLL_MS = 2000
const LABELS = { valid: 'valid', expiring: 'expiring', expired: 'expired', failing: 'failing', login_required: 'login required', cold: 'cold', none: 'no token yet' }
const HINTS = {
  expiring: 'inside its safety margin: renewing',
  cold: 'unused: renewed on its next request',
  none: 'obtained on its first request',
  login_required: 'run: bearer-proxy login '
}

const body = document.querySelector('#routes tbody')
const summary = document.getElementById('summary')
/** Per route name: its row and the elements updated in place. */
const rows = new Map()
let pollTimer
let tickTimer
let polling = false
let downSince

function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

function pad (n) {
  return String(n).padStart(2, '0')
}

/** 14:03:27, or 2026-11-29 14:03:27 when not today. */
function clock (date) {
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  const today = new Date()
  if (date.toDateString() === today.toDateString()) return time
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`
}

function duration (seconds) {
  const s = Math.max(0, Math.round(seconds))
  const d = Math.floor(s / 86400)
  const h = Math.floor(s % 86400 / 3600)
  const m = Math.floor(s % 3600 / 60)
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s % 60)}s`
  if (m > 0) return `${m}m ${pad(s % 60)}s`
  return `${s}s`
}

function errors (n) {
  return n === 0 ? '' : n === 1 ? ', 1 error' : `, ${n} errors`
}

function ago (date) {
  const s = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  return `${Math.floor(s / 3600)} h ago`
}

function setTime (node, iso) {
  if (iso === null) {
    node.removeAttribute('datetime')
    node.textContent = '–'
    return
  }
  node.dateTime = iso
  node.textContent = clock(new Date(iso))
  node.title = iso
}

function newRow (route) {
  const tr = el('tr')
  const cell = (label) => {
    const td = el('td')
    td.dataset.label = label
    tr.append(td)
    return td
  }
  const r = { tr }
  const name = cell('Route')
  r.name = name.appendChild(el('strong', 'name'))
  r.path = name.appendChild(el('span', 'sub path'))
  r.auth = name.appendChild(el('span', 'sub'))
  const state = cell('State')
  r.state = state.appendChild(el('span', 'badge'))
  r.hint = state.appendChild(el('span', 'sub'))
  r.expiry = cell('Expires in').appendChild(el('time', 'expiry'))
  const refresh = cell('Last refresh')
  r.refresh = refresh.appendChild(el('time', 'refresh'))
  r.refreshAgo = refresh.appendChild(el('span', 'sub'))
  const error = cell('Last error')
  r.error = error.appendChild(el('span', 'error'))
  r.errorAt = error.appendChild(el('time', 'sub'))
  r.tokens = cell('Token requests')
  const requests = cell('Requests')
  r.recent = requests.appendChild(el('span'))
  r.total = requests.appendChild(el('span', 'sub'))
  const actions = cell('Actions')
  actions.className = 'actions'
  r.renew = actions.appendChild(el('button', 'renew', 'Renew now'))
  r.forget = actions.appendChild(el('button', 'forget', 'Forget token'))
  r.message = actions.appendChild(el('span', 'message'))
  r.message.setAttribute('role', 'status')
  r.renew.type = r.forget.type = 'button'
  r.renew.addEventListener('click', () => act(r, 'POST', 'renew', 'Renewing…'))
  r.forget.addEventListener('click', () => {
    if (confirm(`Forget the token of ${r.route.name}? Its next request obtains a new one.`)) act(r, 'DELETE', 'token', 'Forgetting…')
  })
  return r
}

function update (r, route) {
  r.route = route
  r.receivedAt = performance.now()
  r.tr.dataset.route = route.name
  r.tr.className = `state-${route.state}`
  r.name.textContent = route.name
  r.path.textContent = `${route.prefix} → ${route.upstream}`
  r.auth.textContent = route.auth
  r.state.textContent = LABELS[route.state] ?? route.state
  r.state.className = `badge ${route.state}`
  r.hint.textContent = route.state in HINTS ? HINTS[route.state] + (route.state === 'login_required' ? route.name : '') : ''
  setTime(r.refresh, route.lastRefresh)
  r.error.textContent = route.lastError ?? '–'
  setTime(r.errorAt, route.lastErrorAt ?? null)
  if (route.lastErrorAt === null || route.lastErrorAt === undefined) r.errorAt.textContent = ''
  const t = route.tokenRequests
  r.tokens.textContent = t.failed > 0 ? `${t.total} (${t.failed} failed)` : String(t.total)
  const q = route.requests
  r.recent.textContent = `${q.recent.total} in ${q.recent.seconds / 60} min${errors(q.recent.errors)}`
  r.total.textContent = `${q.total} since start${errors(q.errors)}`
  // A static key has nothing to renew or forget.
  r.renew.disabled = r.forget.disabled = r.busy === true || route.auth === 'static'
  tick(r)
}

/** The moving parts: the countdown (from the server's expiresIn, so clock skew does not matter) and "ago". */
function tick (r) {
  const route = r.route
  if (route.expiresIn === null) {
    r.expiry.removeAttribute('datetime')
    r.expiry.textContent = route.state === 'valid' ? 'never' : '–'
  } else {
    const left = route.expiresIn - (performance.now() - r.receivedAt) / 1000
    r.expiry.dateTime = `PT${Math.max(0, Math.round(left))}S`
    r.expiry.textContent = left > 0 ? duration(left) : 'expired'
  }
  r.refreshAgo.textContent = route.lastRefresh === null ? '' : ago(new Date(route.lastRefresh))
}

function render (routes) {
  const seen = new Set()
  for (const route of routes) {
    seen.add(route.name)
    let r = rows.get(route.name)
    if (r === undefined) {
      r = newRow(route)
      rows.set(route.name, r)
    }
    update(r, route)
    body.append(r.tr) // in /routes order
  }
  for (const [name, r] of rows) {
    if (!seen.has(name)) {
      r.tr.remove()
      rows.delete(name)
    }
  }
  const counts = {}
  for (const route of routes) counts[route.state] = (counts[route.state] ?? 0) + 1
  const states = Object.entries(counts).map(([state, n]) => `${n} ${LABELS[state] ?? state}`).join(', ')
  summary.textContent = `${routes.length} route${routes.length === 1 ? '' : 's'}: ${states} · updated ${clock(new Date())}`
  summary.className = counts.failing || counts.login_required ? 'bad' : ''
}

async function act (r, method, what, doing) {
  r.busy = true
  r.renew.disabled = r.forget.disabled = true
  r.message.className = 'message'
  r.message.textContent = doing
  try {
    const res = await fetch(`/routes/${encodeURIComponent(r.route.name)}/${what}`, { method, headers: { accept: 'application/json' } })
    const answer = await res.json().catch(() => ({}))
    if (!res.ok) throw new Error(answer.error?.message ?? `HTTP ${res.status}`)
    r.message.textContent = `${what === 'renew' ? 'Renewed' : 'Forgotten'} at ${clock(new Date())}`
    r.busy = false
    if (answer.route !== undefined) update(r, answer.route)
  } catch (err) {
    r.message.className = 'message error'
    r.message.textContent = err.message
  } finally {
    r.busy = false
    poll()
  }
}

async function poll () {
  if (polling) return
  polling = true
  clearTimeout(pollTimer)
  try {
    const res = await fetch('/routes', { cache: 'no-store', headers: { accept: 'application/json' } })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    render((await res.json()).routes)
    downSince = undefined
  } catch {
    downSince ??= new Date()
    summary.textContent = `The admin port does not answer (since ${clock(downSince)}); retrying every ${POLL_MS / 1000} s.`
    summary.className = 'bad'
  } finally {
    polling = false
    if (!document.hidden) pollTimer = setTimeout(poll, POLL_MS)
  }
}

function start () {
  poll()
  clearInterval(tickTimer)
  tickTimer = setInterval(() => { for (const r of rows.values()) tick(r) }, 1000)
}

// A hidden tab costs nothing: no polling, no ticking.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    clearTimeout(pollTimer)
    clearInterval(tickTimer)
  } else {
    start()
  }
})
start()
