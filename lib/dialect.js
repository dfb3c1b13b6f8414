'use strict'
// The IDialect object apps receive. Each call is one native call: arguments go in as one JSON
// string, rows come back as one JSON string. SQLite answers synchronously (a string); the
// pooled and NET dialects answer with a Promise. Transactions follow the async context of
// `$transaction` callbacks (AsyncLocalStorage), so calls made inside a callback use the
// transaction's connection whichever dialect object they go through.

const { AsyncLocalStorage } = require('node:async_hooks')
const { MostaError, fromNative, invalidArgument } = require('./errors')
const { Pieces } = require('./pieces')
const { RecordShapes } = require('./records')
const { binding } = require('./native')

/** RegExp values in filters travel as `{ $re, flags }` (JSON has no RegExp). */
function filterReplacer(_key, value) {
  return value instanceof RegExp ? { $re: value.source, flags: value.flags } : value
}

/**
 * Whether `v` holds a RegExp. A replacer function makes JSON.stringify call back into JS
 * for every value, so it is used only when there is something to replace. Very deep (or
 * circular) values answer true and take the replacer path, which reports them as before.
 */
function hasRegExp(v, depth = 0) {
  if (v === null || typeof v !== 'object') return false
  if (v instanceof RegExp || depth > 32) return true
  if (ArrayBuffer.isView(v)) return false
  for (const k in v) if (hasRegExp(v[k], depth + 1)) return true
  return false
}

function encode(args, withFilters) {
  try {
    return withFilters && hasRegExp(args) ? JSON.stringify(args, filterReplacer) : JSON.stringify(args)
  } catch (e) {
    throw invalidArgument(`arguments cannot be sent to the database: ${e.message}`)
  }
}

/** Settles a native answer (string or Promise of string) into a Promise of decoded value. */
function settle(out, decode) {
  if (typeof out === 'string' || out === undefined || out === null) {
    try {
      return Promise.resolve(decode(out))
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
  }
  return out.then(decode, (e) => {
    throw fromNative(e)
  })
}

const parse = (s) => (s === undefined || s === null ? undefined : JSON.parse(s))

class Dialect {
  constructor(native) {
    this._native = native
    this.dialectType = native.dialectType
    this._revive = native.datesAsDates
    this._handles = new WeakMap()
    this._byJson = new Map()
    this._meta = []
    this._byName = new Map()
    this._tx = new AsyncLocalStorage()
    // SQLite's calls go through a module function naming the session: a method of the
    // native object costs napi's receiver checks on every call (see src/sqlite.rs).
    const session = native.session
    const sqlite = typeof session === 'number'
    this._session = session
    this._invoke = sqlite
      ? (method, h, args, tx) => binding.sqliteCall(session, method, h, args, tx)
      : (method, h, args, tx, stream) => native.call(method, h, args, tx, stream)
    // The SQL dialects take `create` data as values rather than JSON (see records.js),
    // through a module function naming the dialect by number.
    const target = sqlite ? session : native.valuesNumber
    if (typeof target === 'number') {
      this._target = target
      this._createFn = sqlite ? binding.sqliteCreate : binding.asyncCreate
      this._records = new RecordShapes((keys) => native.recordShape(keys))
    }
    // Rows read through a schema may come shaped (`[shape, value, …]`, see `_maker`).
    this._shaped = native.shapedRows === true
    // Row constructors by shape, or by shape and date line (see `_maker`).
    this._makers = new Map()
    this._lastMaker = undefined
    // Row builders of templated create answers, by template (see `created`).
    this._templates = []
    // Pooled dialects send large row answers in pieces (see pieces.js).
    if (typeof native.onPieces === 'function') {
      this._pieces = new Pieces()
      native.onPieces((id, json) => this._pieces.receive(id, json))
    }
  }

  // ------------------------------------------------------------ schemas and plumbing

  /** The compiled handle of a schema object (compiled once per dialect). */
  _handle(schema) {
    let h = this._handles.get(schema)
    if (h !== undefined) return h
    if (!schema || typeof schema !== 'object') throw invalidArgument('expected an EntitySchema as the first argument', 'schema')
    const json = JSON.stringify(schema)
    h = this._byJson.get(json)
    if (h === undefined) {
      try {
        h = this._native.compile(json)
      } catch (e) {
        throw fromNative(e)
      }
      this._byJson.set(json, h)
      this._meta[h] = schemaMeta(schema)
    }
    this._handles.set(schema, h)
    this._byName.set(schema.name, schema)
    return h
  }

  /**
   * The constructor of the objects of shaped rows `[shape, value, …]`: the keys of a shape
   * are asked of the native side once, then a constructor made for them builds each row.
   * With `dates` (the column names of an answer's date line, `dateLine` its text), it also
   * makes `Date`s of those columns' numbers.
   */
  _maker(shape, dateLine, dates) {
    // Answers in a row often share their shape and date line: skip building the map key.
    const last = this._lastMaker
    if (last !== undefined && last.shape === shape && last.dateLine === dateLine) return last.make
    const key = dateLine === '' ? shape : `${shape}${dateLine}`
    let make = this._makers.get(key)
    if (make === undefined) {
      const keys = this._native.shapeKeys(shape)
      if (!Array.isArray(keys)) throw new MostaError('E_INTERNAL', `an answer names the unknown row shape ${shape}`)
      make = rowMaker(keys, dates)
      this._makers.set(key, make)
    }
    this._lastMaker = { shape, dateLine, make }
    return make
  }

  /**
   * Replaces the shaped rows of a list answer by their objects, dates included; false when
   * its rows are objects already. The rows of one answer share one shape (the native side
   * writes them from one plan).
   */
  _unshapeAll(list, dateLine, dates) {
    if (list.length === 0 || !Array.isArray(list[0])) return false
    const make = this._maker(list[0][0], dateLine, dates)
    for (let i = 0; i < list.length; i++) list[i] = make(list[i])
    return true
  }

  _txId() {
    const s = this._tx.getStore()
    return s === undefined ? undefined : s.id
  }

  /** `stream`: the id under which a large row answer may arrive in pieces. */
  _call(method, schema, args, decode, withFilters = true, stream = undefined) {
    let out
    try {
      const h = this._handle(schema)
      out = this._invoke(method, h, encode(args, withFilters), this._txId(), stream)
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return settle(out, (s) => decode(this, schema, s))
  }

  /** A call answering a list of rows, which may arrive in pieces. */
  _callRows(method, schema, args) {
    const pieces = this._pieces
    if (pieces === undefined) return this._call(method, schema, args, rows)
    // Each piece is decoded (dates included) as it arrives.
    const id = pieces.open((s) => rows(this, schema, s))
    return this._call(method, schema, args, (_d, _sc, s) => pieces.close(id, s), true, id).catch((e) => {
      pieces.discard(id)
      throw e
    })
  }

  // ------------------------------------------------------------ IDialect: reads

  find(schema, filter = {}, options) {
    return this._callRows('find', schema, [filter, options])
  }
  findOne(schema, filter = {}, options) {
    return this._call('findOne', schema, [filter, options], row)
  }
  findById(schema, id, options) {
    if (this._session !== undefined && options === undefined && typeof id === 'string') {
      const out = this._findByTextId(schema, id)
      if (out !== undefined) return out
    }
    return this._call('findById', schema, [id, options], row)
  }

  /** SQLite `findById` of a string id, passed as itself (see src/sqlite.rs); undefined when it must go as JSON. */
  _findByTextId(schema, id) {
    let out
    try {
      out = binding.sqliteFindById(this._session, this._handle(schema), id, this._txId())
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return out === null ? undefined : settle(out, (s) => row(this, schema, s))
  }
  findWithRelations(schema, filter = {}, relations = [], options) {
    return this._call('findWithRelations', schema, [filter, relations, options], rows)
  }
  findByIdWithRelations(schema, id, relations = [], options) {
    return this._call('findByIdWithRelations', schema, [id, relations, options], row)
  }
  count(schema, filter = {}, options) {
    return this._call('count', schema, [filter, options], plain)
  }
  distinct(schema, field, filter = {}, options) {
    return this._call('distinct', schema, [field, filter, options], (d, sc, s) => distinctValues(d, sc, field, s))
  }
  aggregate(schema, stages, options) {
    return this._call('aggregate', schema, [stages, options], (_d, _sc, s) => parseRows(s))
  }
  search(schema, query, fields, options) {
    return this._callRows('search', schema, [query, fields, options])
  }

  // ------------------------------------------------------------ IDialect: writes

  create(schema, data) {
    if (this._records !== undefined && data !== null && typeof data === 'object') {
      const out = this._createFromValues(schema, data)
      if (out !== undefined) return out
    }
    return this._call('create', schema, [data], row, false)
  }

  /** `create` with the data's values as arguments; undefined when it must go as JSON. */
  _createFromValues(schema, data) {
    let out, values
    try {
      const h = this._handle(schema)
      const shape = this._records.of(h, data, Object.keys(data))
      if (shape === undefined) return undefined
      values = shape.read(data)
      out = shape.send(this._createFn, this._target, h, shape.number, this._txId(), values)
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return out === undefined ? undefined : settle(out, (s) => created(this, schema, s, values))
  }

  update(schema, id, data) {
    return this._call('update', schema, [id, data], row, false)
  }
  updateMany(schema, filter, data) {
    return this._call('updateMany', schema, [filter, data], plain)
  }
  delete(schema, id) {
    return this._call('delete', schema, [id], plain, false)
  }
  deleteMany(schema, filter) {
    return this._call('deleteMany', schema, [filter], plain)
  }
  upsert(schema, filter, data) {
    return this._call('upsert', schema, [filter, data], row)
  }
  increment(schema, id, field, amount) {
    return this._call('increment', schema, [id, field, amount], row, false)
  }
  addToSet(schema, id, field, value) {
    return this._call('addToSet', schema, [id, field, value], row, false)
  }
  pull(schema, id, field, value) {
    return this._call('pull', schema, [id, field, value], row, false)
  }

  // ------------------------------------------------------------ schema management

  initSchema(schemas = []) {
    let out
    try {
      out = this._native.initSchema(schemas.map((s) => this._handle(s)))
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return settle(out, () => undefined)
  }

  _admin(op, arg, decode = parse) {
    let out
    try {
      out = this._native.admin(op, arg === undefined ? '' : JSON.stringify(arg), this._txId())
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return settle(out, decode)
  }

  dropTable(name) {
    return this._admin('dropTable', name, () => undefined)
  }
  dropAllTables() {
    return this._admin('dropAllTables', undefined, () => undefined)
  }
  dropSchema(schemas = []) {
    return this._admin('dropSchema', schemas.map((s) => this._handle(s)))
  }
  truncateTable(name) {
    return this._admin('truncateTable', name, () => undefined)
  }
  /** Empties the given schemas' tables (junctions first); without an argument, those of the last initSchema. */
  truncateAll(schemas) {
    return this._admin('truncateAll', schemas === undefined ? undefined : schemas.map((s) => this._handle(s)))
  }
  testConnection() {
    return this._admin('testConnection').catch(() => false)
  }

  // ------------------------------------------------------------ raw SQL

  _execute(sql, params, rowsWanted) {
    let out
    try {
      if (typeof sql !== 'string' || !sql) throw invalidArgument('sql must be a non-empty string', 'sql')
      out = this._native.execute(sql, encode(rawParams(params), false), rowsWanted, this._txId())
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return settle(out, rowsWanted ? parseRows : parse)
  }
  executeQuery(sql, params) {
    return this._execute(sql, params, true)
  }
  executeRun(sql, params) {
    return this._execute(sql, params, false)
  }

  // ------------------------------------------------------------ transactions

  _begin(options, explicit) {
    const iso = options && options.isolation !== undefined ? options.isolation : undefined
    let out
    try {
      out = this._native.beginTx(iso, this._txId(), explicit)
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return settle(out, parse)
  }

  _end(kind, id) {
    let out
    try {
      out = kind === 'commit' ? this._native.commitTx(id) : this._native.rollbackTx(id)
    } catch (e) {
      return Promise.reject(fromNative(e))
    }
    return settle(out, () => undefined)
  }

  /**
   * Runs `cb(dialect)` in a transaction (a savepoint when nested): committed when the
   * callback resolves, rolled back (and the error rethrown) when it throws.
   */
  async $transaction(cb, options) {
    if (typeof cb !== 'function') throw invalidArgument('$transaction expects a callback', 'callback')
    const tx = await this._begin(options, false)
    let result
    try {
      result = await this._tx.run(tx, () => cb(this))
    } catch (e) {
      await this._end('rollback', tx.id).catch(() => {})
      throw e
    }
    try {
      await this._end('commit', tx.id)
    } catch (e) {
      await this._end('rollback', tx.id).catch(() => {})
      throw e
    }
    return result
  }

  /** Explicit transactions: calls made outside any `$transaction` context join it. */
  beginTx(options) {
    return this._begin(options, true)
  }
  commitTx(tx) {
    return this._end('commit', txIdOf(tx))
  }
  rollbackTx(tx) {
    return this._end('rollback', txIdOf(tx))
  }

  // ------------------------------------------------------------ lifecycle

  /** Connections open when the dialect is created; kept for IDialect compatibility. */
  async connect() {}

  async disconnect() {
    try {
      await this._native.close()
    } catch (e) {
      throw fromNative(e)
    }
  }
}

/**
 * Raw SQL parameters: `Date`s travel tagged (`{ $date: iso }`) so that each backend binds
 * them as it stores dates (MySQL: local `DATETIME` text), not as ISO strings.
 */
function rawParams(params) {
  if (params === undefined || params === null) return []
  if (!Array.isArray(params)) throw invalidArgument('params must be an array', 'params')
  if (!params.some((p) => p instanceof Date)) return params
  return params.map((p, i) => {
    if (!(p instanceof Date)) return p
    if (Number.isNaN(p.getTime())) throw invalidArgument(`params[${i}] is an invalid Date`, `params[${i}]`)
    return { $date: p.toISOString() }
  })
}

function txIdOf(tx) {
  if (tx && typeof tx === 'object' && typeof tx.id === 'string') return tx.id
  if (typeof tx === 'string') return tx
  throw invalidArgument('expected a TxHandle returned by beginTx()', 'tx')
}

// ------------------------------------------------------------ decoding

/** Date columns of a schema and its relations, for backends that return `Date`s. */
function schemaMeta(schema) {
  const dateKeys = Object.entries(schema.fields || {})
    .filter(([, f]) => f && f.type === 'date')
    .map(([n]) => n)
  if (schema.timestamps) dateKeys.push('createdAt', 'updatedAt')
  if (schema.softDelete) dateKeys.push('deletedAt')
  const relations = Object.entries(schema.relations || {}).map(([n, r]) => [n, r && r.target])
  // Date lines (see `parseRows`) → whether they name every date key.
  return { dateKeys, relations, datesCoveredBy: new Map() }
}

function schemaMetaOf(d, schema) {
  return d._meta[d._handles.get(schema)] || schemaMeta(schema)
}

function reviveRow(d, schema, r) {
  const meta = schemaMetaOf(d, schema)
  for (const k of meta.dateKeys) {
    const v = r[k]
    if (typeof v === 'string') r[k] = new Date(v)
  }
  for (const [rel, target] of meta.relations) {
    const v = r[rel]
    if (v === null || typeof v !== 'object') continue
    const ts = d._byName.get(target)
    if (!ts) continue
    if (Array.isArray(v)) {
      for (const x of v) if (x && typeof x === 'object') reviveRow(d, ts, x)
    } else reviveRow(d, ts, v)
  }
  return r
}

/**
 * A function building the row object of a shaped row from its values (`a[1…]`), the
 * numbers of the `dates` columns (epoch milliseconds) as `Date`s. Generated code builds
 * objects of one hidden class, several times faster than adding keys one by one; where
 * generating code is not allowed, the keys are added in a loop.
 */
function rowMaker(keys, dates = null) {
  return objectMaker(keys, keys.map((k, i) => ['a', i + 1, dates !== null && dates.includes(k)]), ['a'])
}

/**
 * The row builder of a create answer's template (`{ keys, slots }`, see `RowTemplate` in
 * src/records.rs): each value is the call's value `v[slot]` (slot >= 0), the answer's next
 * made value `m[1…]` (-1; -3 for epoch milliseconds that become a `Date`), or a new empty
 * list (-2).
 */
function templateMaker({ keys, slots }) {
  let made = 0
  const from = slots.map((slot) => (slot >= 0 ? ['v', slot] : slot === -1 ? ['m', ++made] : slot === -3 ? ['m', ++made, true] : null))
  return objectMaker(keys, from, ['v', 'm'])
}

/**
 * A function of `params` returning an object with `keys`; `from[i]` says where key i's
 * value is: `[param, index]` (that param's element), `[param, index, true]` (the same, a
 * number there becoming a `Date`), or null for a new empty list.
 */
function objectMaker(keys, from, params) {
  try {
    // JSON text of a string is a JavaScript string literal; `__proto__` is written as a
    // computed key, which defines an own property instead of setting the prototype.
    const props = keys.map((k, i) => {
      const f = from[i]
      const at = f === null ? '' : `${f[0]}[${f[1]}]`
      const value = f === null ? '[]' : f[2] === true ? `typeof ${at} === 'number' ? new Date(${at}) : ${at}` : at
      return `${k === '__proto__' ? '["__proto__"]' : JSON.stringify(k)}: ${value}`
    })
    return new Function(...params, `return { ${props.join(', ')} }`)
  } catch {
    const arg = from.map((f) => (f === null ? -1 : params.indexOf(f[0])))
    const valueOf = (args, i) => {
      if (arg[i] < 0) return []
      const v = args[arg[i]][from[i][1]]
      return from[i][2] === true && typeof v === 'number' ? new Date(v) : v
    }
    return (...args) => Object.fromEntries(keys.map((k, i) => [k, valueOf(args, i)]))
  }
}

/**
 * Parses a native answer. PostgreSQL and MySQL rows carry their date-time columns as epoch
 * milliseconds, named on a first line `D["col",…]` (JSON never starts with `D`): those
 * become `Date`s here without parsing any date text. With `d`, rows may come shaped
 * (`[shape, value, …]`): the answer is one row, or a list of rows when `list` is true.
 */
function parseRows(s, d, list = false) {
  let dates = null
  const dateLine = dateLineOf(s)
  if (dateLine !== '') {
    dates = JSON.parse(dateLine)
    s = s.slice(dateLine.length + 2)
  }
  let v = JSON.parse(s)
  if (d !== undefined && d._shaped && Array.isArray(v)) {
    // Shaped rows: their constructor makes the Dates too.
    if (!list) return d._maker(v[0], dateLine, dates)(v)
    if (d._unshapeAll(v, dateLine, dates)) return v
  }
  if (dates === null) return v
  for (const r of Array.isArray(v) ? v : v === null ? [] : [v]) {
    for (const k of dates) {
      const t = r[k]
      if (typeof t === 'number') r[k] = new Date(t)
    }
  }
  return v
}

function rows(d, schema, s) {
  const list = parseRows(s, d, true)
  if (d._revive && list.length > 0) {
    const meta = schemaMetaOf(d, schema)
    if (mayNeedRevive(meta, s)) for (const r of list) reviveRow(d, schema, r)
  }
  return list
}

/** The date line of the answer `s` without its `D` and newline; '' when it has none. */
function dateLineOf(s) {
  return s.charCodeAt(0) === 68 /* D */ ? s.slice(1, s.indexOf('\n')) : ''
}

/**
 * Whether rows of the answer `s` may hold what `reviveRow` converts: related rows, or date
 * text from columns that are not date-time columns. Those that are come as numbers named on
 * the answer's date line, and are `Date`s already.
 */
function mayNeedRevive(meta, s) {
  if (meta.relations.length > 0) return true
  if (meta.dateKeys.length === 0) return false
  const line = dateLineOf(s)
  if (line === '') return true
  let covered = meta.datesCoveredBy.get(line)
  if (covered === undefined) {
    const dates = JSON.parse(line)
    covered = meta.dateKeys.every((k) => dates.includes(k))
    meta.datesCoveredBy.set(line, covered)
  }
  return !covered
}

function row(d, schema, s) {
  const r = parseRows(s, d)
  return r !== null && d._revive ? reviveRow(d, schema, r) : r
}

/**
 * A created row. A templated answer, `E[template, made…]` (see `TemplateRow` in
 * crates/core/src/dialect/rows.rs), carries only the values the call did not send; the
 * others are the call's `values`, which the database stored unchanged.
 */
function created(d, schema, s, values) {
  if (s.charCodeAt(0) !== 69 /* E */) return row(d, schema, s)
  const a = JSON.parse(s.slice(1))
  let make = d._templates[a[0]]
  if (make === undefined) {
    const t = d._native.templateOf(a[0])
    if (t === null || typeof t !== 'object') throw new MostaError('E_INTERNAL', `a create answer names the unknown row template ${a[0]}`)
    make = d._templates[a[0]] = templateMaker(t)
  }
  const r = make(values, a)
  return d._revive ? reviveRow(d, schema, r) : r
}

function plain(_d, _schema, s) {
  return JSON.parse(s)
}


/** `distinct` of a date field gives `Date`s on the backends that return dates. */
function distinctValues(d, schema, field, s) {
  const list = JSON.parse(s)
  if (!d._revive || !schemaMetaOf(d, schema).dateKeys.includes(field)) return list
  return list.map((v) => (typeof v === 'string' ? new Date(v) : v))
}

module.exports = { Dialect }
