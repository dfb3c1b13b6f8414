'use strict'
// The data-plug singletons: the business dialect (ORM or NET by MOSTA_DATA), the system
// dialect, and isolated dialects. Configuration is resolved by the native core from a
// snapshot of process.env taken at each (re)connection.

const { binding, envSnapshot } = require('./native')
const { Dialect } = require('./dialect')
const { fromNative } = require('./errors')
const registry = require('./registry')

async function open(source, kind) {
  let native
  try {
    native = await binding.openDialect(source, kind)
  } catch (e) {
    throw fromNative(e)
  }
  return native ? new Dialect(native) : null
}

// Schemas registered after a dialect was created are initialised on the next get (§10.5).
// initSchema replaces the dialect's schema list, so it always receives every registered one.
const initState = new WeakMap()

function ensureSchemas(d) {
  if (!(d instanceof Dialect)) return d // an injected double: left alone
  // Inside a transaction the DDL would wait for that same transaction (SQLite queues it,
  // PostgreSQL blocks on its locks): initialise on the next call made outside one.
  if (d._txId() !== undefined) return d
  let st = initState.get(d)
  if (!st) initState.set(d, (st = { names: new Set(), running: null }))
  const upToDate = () => registry.getAllSchemas().every((s) => st.names.has(s.name))
  if (!st.running && upToDate()) return d
  const run = (st.running || Promise.resolve()).then(async () => {
    if (upToDate()) return
    const all = registry.getAllSchemas()
    await d.initSchema(all)
    for (const s of all) st.names.add(s.name)
  })
  st.running = run
  const done = () => {
    if (st.running === run) st.running = null
  }
  return run.then(
    () => (done(), d),
    (e) => {
      done()
      throw e
    },
  )
}

// ------------------------------------------------------------ business dialect

let business = null // a Dialect, or any object given to setDialect
let opening = null

async function getDialect() {
  if (business) return ensureSchemas(business)
  if (!opening) {
    const attempt = open(envSnapshot(), 'business').then(
      async (d) => {
        if (opening !== attempt) {
          // setDialect/resetDialect/disconnect ran meanwhile: they win, this one closes.
          await d.disconnect().catch(() => {})
          return business || getDialect()
        }
        business = d
        opening = null
        return d
      },
      (e) => {
        if (opening === attempt) opening = null
        throw e
      },
    )
    opening = attempt
  }
  return ensureSchemas(await opening)
}

function getDataMode() {
  try {
    return binding.dataMode(envSnapshot())
  } catch (e) {
    throw fromNative(e)
  }
}

const isNetMode = () => getDataMode() === 'net'
const isOrmMode = () => getDataMode() === 'orm'

function setDialect(d) {
  business = d
  opening = null
}

function resetDialect() {
  business = null
  opening = null
}

/** Closes the business connection; the next getDialect() re-reads the environment. */
async function disconnect() {
  const d = business || (opening && (await opening.catch(() => null)))
  business = null
  opening = null
  if (d && d !== system && typeof d.disconnect === 'function') await d.disconnect()
}

// ------------------------------------------------------------ system dialect

let system = null // an isolated Dialect or an injected object; null → the business one
let bootstrapping = null

async function getSystemDialect() {
  return system ? ensureSchemas(system) : getDialect()
}

/**
 * With MOSTA_SYSTEM_DIALECT + MOSTA_SYSTEM_URI, opens an isolated connection (schema
 * strategy MOSTA_SYSTEM_SCHEMA_STRATEGY, default `update`); otherwise the system dialect is
 * the business one. Idempotent.
 */
async function bootstrapSystemDialect() {
  if (system) return system
  if (!bootstrapping) {
    bootstrapping = open(envSnapshot(), 'system').then(
      (d) => {
        if (d) system = d
        bootstrapping = null
        return d
      },
      (e) => {
        bootstrapping = null
        throw e
      },
    )
  }
  const d = await bootstrapping
  return d ? ensureSchemas(d) : getDialect()
}

function setSystemDialect(d) {
  system = d
}

/** Forgets the system dialect without closing it. */
function resetSystemDialect() {
  system = null
  bootstrapping = null
}

// ------------------------------------------------------------ isolated dialects

/** A new, independent connection, not stored as a singleton nor added to the registry. */
async function openIsolatedDialect(options, schemas) {
  const d = await open(JSON.stringify(options || {}), 'options')
  if (schemas && schemas.length > 0) {
    await d.initSchema(schemas.map((s) => ({ fields: {}, relations: {}, indexes: [], ...s })))
  }
  return d
}

module.exports = {
  getDialect,
  getDataMode,
  isNetMode,
  isOrmMode,
  setDialect,
  resetDialect,
  disconnect,
  getSystemDialect,
  bootstrapSystemDialect,
  setSystemDialect,
  resetSystemDialect,
  openIsolatedDialect,
}
