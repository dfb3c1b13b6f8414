// A protocol-compatible @mostajs/net REST server (net-protocol.md §1, §3, §4), backed by this
// package's own SQLite dialect. The NET tests start it on loopback; `npm run net-server`
// runs it by hand so NET mode can be tried locally.
//
// Beyond the 2.2.5 wire protocol it offers what newer servers do and the tests need:
// optional API keys (401/403), the RFC 8628 device endpoints with an approval endpoint, and
// fault injection (stalls, failures) through the returned handle.

import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'
import { readFileSync, existsSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const plug = require('../index.js')

const fastifyError = (statusCode, code, error, message) => ({ statusCode, ...(code ? { code } : {}), error, message })
const REASONS = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 415: 'Unsupported Media Type', 500: 'Internal Server Error' }

/** HTTP status of an ORM error code, as the 2.2.5 routes (plus newer auth codes) map them. */
function statusOf(code) {
  if (['ENTITY_NOT_FOUND', 'EntityNotFoundError', 'UNKNOWN_ENTITY'].includes(code)) return 404
  if (code.startsWith('MISSING')) return 400
  if (code === 'DB_NOT_CONNECTED') return 503
  if (code === 'UNAUTHORIZED') return 401
  if (code === 'FORBIDDEN') return 403
  if (code === 'METHOD_NOT_ALLOWED') return 405
  return 500
}

class OrmError extends Error {
  constructor(code, message) {
    super(message)
    this.code = code
  }
}

/**
 * Starts the server.
 * @param {object} o
 * @param {number} [o.port=0]         0 picks a free port
 * @param {string} [o.host='127.0.0.1']
 * @param {object[]} o.schemas        EntitySchemas served (by collection, and by entity name)
 * @param {string} [o.sqlite=':memory:']
 * @param {string[]|null} [o.apiKeys] null: no authentication (2.2.5); else the accepted keys
 * @param {Record<string,'read'|'write'>} [o.keyScopes] per-key operation scope (default write)
 * @param {number} [o.rateLimit=1000] requests per minute per client IP on /api/v1/
 * @param {number} [o.deviceInterval=5] seconds between device-flow polls
 * @param {number} [o.deviceExpiresIn=900]
 */
export async function startNetServer(o = {}) {
  const schemas = o.schemas || []
  const dialect = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: o.sqlite || ':memory:', schemaStrategy: 'update' }, schemas)
  const byCollection = new Map(schemas.map((s) => [s.collection, s]))
  const byName = new Map(schemas.map((s) => [s.name, s]))
  const keys = o.apiKeys ? new Map(o.apiKeys.map((k) => [k, (o.keyScopes && o.keyScopes[k]) || 'write'])) : null
  const rateLimit = o.rateLimit ?? 1000
  const hits = new Map() // ip -> { windowStart, count }
  const devices = new Map() // device_code -> state
  const requests = []
  const faults = { stallMs: 0, failNext: [], tokenErrors: [] }

  const schemaFor = (col) => {
    const s = byCollection.get(col) || byName.get(col)
    if (!s) throw new OrmError('UNKNOWN_ENTITY', `Unknown entity or collection: ${col}`)
    return s
  }

  // ---------------------------------------------------------------- ORM operations

  const list = (v) => (typeof v === 'string' && v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined)
  function queryOptions(q) {
    const opts = {}
    if (q.get('sort')) opts.sort = JSON.parse(q.get('sort'))
    if (q.get('limit')) opts.limit = parseInt(q.get('limit'), 10)
    if (q.get('skip')) opts.skip = parseInt(q.get('skip'), 10)
    if (list(q.get('select'))) opts.select = list(q.get('select'))
    if (list(q.get('exclude'))) opts.exclude = list(q.get('exclude'))
    return opts
  }
  const filterOf = (q) => (q.get('filter') ? JSON.parse(q.get('filter')) : {})
  const relationsOf = (q) => list(q.get('relations') || q.get('include'))
  const need = (v, code, what) => {
    if (v === undefined || v === null) throw new OrmError(code, `${what} is required`)
    return v
  }

  /** Routes `/api/v1/:col[/:id][/:op]` to an operation; returns [status, body]. */
  async function orm(method, parts, q, body) {
    const [col, id, op] = parts
    const s = schemaFor(col)
    const ok = (data, metadata, status = 200) => [status, { status: 'ok', ...(data !== undefined ? { data } : {}), ...(metadata ? { metadata } : {}) }]
    if (parts.length === 1) {
      if (method === 'GET') {
        const rels = relationsOf(q)
        const rows = rels ? await dialect.findWithRelations(s, filterOf(q), rels, queryOptions(q)) : await dialect.find(s, filterOf(q), queryOptions(q))
        return ok(rows, { count: rows.length })
      }
      if (method === 'POST') return ok(await dialect.create(s, need(body, 'MISSING_DATA', 'data')), undefined, 201)
    }
    if (parts.length === 2) {
      if (id === 'count' && method === 'GET') {
        const n = await dialect.count(s, filterOf(q))
        return ok(n, { total: n })
      }
      if (id === 'one' && method === 'GET') {
        const rels = relationsOf(q)
        const opts = { ...queryOptions(q), limit: 1 }
        const row = rels ? (await dialect.findWithRelations(s, filterOf(q), rels, opts))[0] ?? null : await dialect.findOne(s, filterOf(q), opts)
        return ok(row)
      }
      if (id === 'search' && method === 'POST') {
        const rows = await dialect.search(s, need(body && body.query, 'MISSING_QUERY', 'query'), undefined, (body && body.options) || {})
        return ok(rows, { count: rows.length })
      }
      if (id === 'upsert' && method === 'POST') return ok(await dialect.upsert(s, (body && body.filter) || {}, need(body && body.data, 'MISSING_DATA', 'data')))
      if (id === 'aggregate' && method === 'POST') return ok(await dialect.aggregate(s, need(body && body.stages, 'MISSING_STAGES', 'stages')))
      if (id === 'bulk' && method === 'PUT') {
        const n = await dialect.updateMany(s, (body && body.filter) || {}, need(body && body.data, 'MISSING_DATA', 'data'))
        return ok(undefined, { count: n })
      }
      if (id === 'bulk' && method === 'DELETE') {
        const n = await dialect.deleteMany(s, (body && body.filter) || filterOf(q))
        return ok(n, { count: n })
      }
      if (method === 'GET') {
        const rels = relationsOf(q)
        return ok(rels ? await dialect.findByIdWithRelations(s, id, rels, queryOptions(q)) : await dialect.findById(s, id, queryOptions(q)))
      }
      if (method === 'PUT') return ok(await dialect.update(s, id, need(body, 'MISSING_DATA', 'data')))
      if (method === 'DELETE') return ok(await dialect.delete(s, id))
      if (method === 'POST') throw new OrmError('METHOD_NOT_ALLOWED', `POST ${col}/${id} is not allowed`)
    }
    if (parts.length === 3 && method === 'POST' && body) {
      if (op === 'addToSet') return ok(await dialect.addToSet(s, id, body.field, body.value))
      if (op === 'pull') return ok(await dialect.pull(s, id, body.field, body.value))
      if (op === 'increment') return ok(await dialect.increment(s, id, body.field, body.amount))
    }
    return null
  }

  // ---------------------------------------------------------------- device flow (RFC 8628)

  const userCode = () => {
    const a = 'BCDFGHJKLMNPQRSTVWXZ'
    const pick = () => Array.from(randomBytes(4), (b) => a[b % a.length]).join('')
    return `${pick()}-${pick()}`
  }

  function deviceAuthorize(body, base) {
    if (!body || !body.client_id) return [400, { error: 'invalid_client', error_description: 'client_id is required' }]
    const code = randomBytes(16).toString('hex')
    const d = {
      device_code: code,
      user_code: userCode(),
      client_id: body.client_id,
      scope: body.scope,
      expiresAt: Date.now() + (o.deviceExpiresIn ?? 900) * 1000,
      interval: o.deviceInterval ?? 5,
      lastPoll: 0,
      state: 'pending',
      polls: 0,
    }
    devices.set(code, d)
    return [
      200,
      {
        device_code: code,
        user_code: d.user_code,
        verification_uri: `${base}/device`,
        verification_uri_complete: `${base}/device?user_code=${d.user_code}`,
        expires_in: o.deviceExpiresIn ?? 900,
        interval: d.interval,
      },
    ]
  }

  function deviceToken(body) {
    if (!body || body.grant_type !== 'urn:ietf:params:oauth:grant-type:device_code') return [400, { error: 'unsupported_grant_type' }]
    const d = devices.get(body.device_code)
    if (!d || d.client_id !== body.client_id) return [400, { error: 'invalid_grant' }]
    d.polls++
    const forced = faults.tokenErrors.shift()
    if (forced === 'slow_down') d.interval += 5
    if (forced) return [400, { error: forced }]
    if (Date.now() > d.expiresAt) return [400, { error: 'expired_token' }]
    const now = Date.now()
    const tooFast = d.lastPoll && now - d.lastPoll < d.interval * 1000 * (o.pollTolerance ?? 0.8)
    d.lastPoll = now
    if (tooFast) {
      d.interval += 5
      return [400, { error: 'slow_down', error_description: `interval is now ${d.interval}s` }]
    }
    if (d.state === 'denied') return [400, { error: 'access_denied' }]
    if (d.state === 'pending') return [400, { error: 'authorization_pending' }]
    if (d.state === 'issued') return [400, { error: 'invalid_grant', error_description: 'code already used' }]
    d.state = 'issued'
    const key = `sk_test_${randomBytes(12).toString('hex')}`
    if (keys) keys.set(key, 'write')
    return [200, { access_token: key, token_type: 'bearer', expires_in: o.tokenExpiresIn ?? 3600, scope: d.scope }]
  }

  function approve(code, deny = false) {
    for (const d of devices.values()) {
      if (d.user_code === code && d.state === 'pending') {
        d.state = deny ? 'denied' : 'approved'
        return true
      }
    }
    return false
  }

  // ---------------------------------------------------------------- HTTP plumbing

  function clientKey(req, url) {
    const h = req.headers['x-api-key']
    if (h) return h
    const auth = req.headers.authorization
    if (auth && /^Bearer /i.test(auth)) return auth.slice(7).trim()
    return url.searchParams.get('apikey') || url.searchParams.get('api_key') || null
  }

  function checkKey(req, url, method) {
    if (!keys) return null
    const k = clientKey(req, url)
    if (!k) return [401, { status: 'error', error: { code: 'UNAUTHORIZED', message: 'API key required (X-API-Key header)' } }]
    if (!keys.has(k)) return [401, { status: 'error', error: { code: 'UNAUTHORIZED', message: 'Invalid or revoked API key' } }]
    if (keys.get(k) === 'read' && method !== 'GET') return [403, { status: 'error', error: { code: 'FORBIDDEN', message: 'API key scope "read" does not allow write operations' } }]
    return null
  }

  function rateLimited(req) {
    const ip = req.socket.remoteAddress
    const now = Date.now()
    let h = hits.get(ip)
    if (!h || now - h.windowStart >= 60_000) hits.set(ip, (h = { windowStart: now, count: 0 }))
    h.count++
    return h.count > rateLimit
  }

  async function readBody(req) {
    const chunks = []
    for await (const c of req) chunks.push(c)
    return Buffer.concat(chunks).toString('utf8')
  }

  function parseBody(req, raw) {
    const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase()
    if (!type) return { body: undefined }
    if (type === 'application/json') {
      if (raw === '') return { error: [400, fastifyError(400, 'FST_ERR_CTP_EMPTY_JSON_BODY', 'Bad Request', "Body cannot be empty when content-type is set to 'application/json'")] }
      try {
        return { body: JSON.parse(raw) }
      } catch (e) {
        return { error: [400, fastifyError(400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'Bad Request', e.message)] }
      }
    }
    if (type === 'application/x-www-form-urlencoded' && o.acceptForms !== false) return { body: Object.fromEntries(new URLSearchParams(raw)) }
    return { error: [415, fastifyError(415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'Unsupported Media Type', `Unsupported Media Type: ${type}`)] }
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://x')
    const method = req.method
    const path = url.pathname
    const raw = await readBody(req)
    requests.push({ at: Date.now(), method, path, query: url.search, headers: { ...req.headers }, body: raw })
    const send = (status, body) => {
      const text = body === undefined ? '' : JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), connection: 'keep-alive', 'keep-alive': 'timeout=72' })
      res.end(text)
    }
    if (faults.stallMs) await new Promise((r) => setTimeout(r, faults.stallMs))
    const fail = faults.failNext.shift()
    if (fail) return send(fail, { status: 'error', error: { code: 'UNAVAILABLE', message: `injected ${fail}` } })

    if (path.startsWith('/api/v1/') && rateLimited(req)) {
      return send(429, { status: 'error', error: { code: 'RATE_LIMITED', message: `Rate limit exceeded (${rateLimit} req/min)` } })
    }
    const parsed = parseBody(req, raw)
    if (parsed.error) return send(...parsed.error)
    const body = parsed.body
    const base = `http://${req.headers.host}`

    if (method === 'GET' && path === '/health') return send(200, { status: 'ok', transports: ['rest'], entities: schemas.map((s) => s.name) })
    if (method === 'POST' && path === '/api/v1/auth/device/authorize') return send(...deviceAuthorize(body, base))
    if (method === 'POST' && path === '/api/v1/auth/device/token') return send(...deviceToken(body))
    if (method === 'POST' && path === '/api/v1/auth/device/approve') {
      return approve(body && body.user_code, body && body.deny === true) ? send(200, { ok: true }) : send(404, { ok: false, error: 'unknown or used user_code' })
    }
    if (method === 'GET' && path === '/device') {
      const code = url.searchParams.get('user_code') || ''
      const html = `<!doctype html><form method="post" action="/api/v1/auth/device/approve" onsubmit="event.preventDefault();fetch(this.action,{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({user_code:this.user_code.value})}).then(r=>r.json()).then(j=>document.body.textContent=j.ok?'Approved. You can close this page.':'Unknown code.')"><p>Enter the code shown in your terminal:</p><input name="user_code" value="${code.replace(/[^A-Z-]/g, '')}"><button>Approve</button></form>`
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      return res.end(html)
    }
    if (path.startsWith('/api/v1/')) {
      const denied = checkKey(req, url, method)
      if (denied) return send(...denied)
      const parts = path.slice('/api/v1/'.length).split('/').filter(Boolean).map(decodeURIComponent)
      try {
        const r = await orm(method, parts, url.searchParams, body)
        if (r) return send(...r)
      } catch (e) {
        if (e instanceof SyntaxError) return send(500, fastifyError(500, undefined, REASONS[500], e.message))
        const code = e instanceof OrmError ? e.code : e.code || e.name || 'ORM_ERROR'
        return send(statusOf(code), { status: 'error', error: { code, message: e.message } })
      }
    }
    return send(404, { message: `Route ${method}:${path} not found`, error: 'Not Found', statusCode: 404 })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify(fastifyError(500, undefined, REASONS[500], e.message)))
    })
  })
  server.keepAliveTimeout = 72_000
  await new Promise((resolve) => server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve))
  const { port } = server.address()

  return {
    url: `http://${o.host ?? '127.0.0.1'}:${port}`,
    dialect,
    requests,
    /** Approves (or denies) a pending device code. */
    approve,
    /** Resolves with the next device code once a client asks for one. */
    async nextUserCode(timeoutMs = 10_000) {
      const seen = new Set([...devices.values()].map((d) => d.user_code))
      const end = Date.now() + timeoutMs
      while (Date.now() < end) {
        const d = [...devices.values()].find((x) => !seen.has(x.user_code))
        if (d) return d.user_code
        await new Promise((r) => setTimeout(r, 10))
      }
      throw new Error('no device code was requested')
    },
    addKey: (k, scope = 'write') => keys && keys.set(k, scope),
    revokeKey: (k) => keys && keys.delete(k),
    keys: () => (keys ? [...keys.keys()] : []),
    /** Every later request waits `ms` before being handled. */
    stall: (ms) => (faults.stallMs = ms),
    /** The next requests answer these statuses, one each. */
    failNext: (...statuses) => faults.failNext.push(...statuses),
    expireDevices: () => devices.forEach((d) => (d.expiresAt = 0)),
    /** The next device-token polls answer these RFC 8628 errors, one each. */
    tokenErrors: (...codes) => faults.tokenErrors.push(...codes),
    async close() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await dialect.disconnect()
    },
  }
}

// `npm run net-server`: schemas from ./schemas.json (an array of EntitySchemas), as the
// reference server reads them; data in ./data/net-server.db.
if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.env.SCHEMAS_PATH || 'schemas.json'
  const schemas = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : []
  const apiKeys = process.env.MOSTA_NET_REQUIRE_KEYS === 'true' ? [] : null
  const s = await startNetServer({
    port: Number(process.env.MOSTA_NET_PORT || 4488),
    host: process.env.MOSTA_NET_HOST || '127.0.0.1',
    schemas,
    sqlite: process.env.MOSTA_NET_SQLITE || './data/net-server.db',
    apiKeys,
    rateLimit: Number(process.env.MOSTA_RATE_LIMIT_CLIENT || 1000),
  })
  console.log(`NET server on ${s.url} serving ${schemas.map((x) => x.collection).join(', ') || 'no collections (create schemas.json)'}${apiKeys ? '; API keys required (device flow at /device)' : ''}`)
  if (!schemas.length) console.log(`put an array of EntitySchemas in ${file} to serve them`)
}
