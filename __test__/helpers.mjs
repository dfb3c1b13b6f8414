// Test support: the backend matrix (real SQLite files, the PostgreSQL and MariaDB servers of
// the machine), one fresh database per suite, and the SKIP/CI rule of CONVENTIONS.md.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import plug from '../index.js'

const PG_ADMIN = process.env.MOSTA_TEST_PG_URI || 'postgres://postgres@127.0.0.1:5432/test'
const MY_ADMIN = process.env.MOSTA_TEST_MYSQL_URI || 'mysql://root@127.0.0.1:3306/test'

let seq = 0
const uniqueName = (tag) => `dp_${tag}_${process.pid}_${Date.now().toString(36)}_${seq++}`.toLowerCase().replace(/[^a-z0-9_]/g, '_')

/**
 * A server-backed database per suite. node:test runs an `after()` registered inside a hook
 * right after that hook, so databases are dropped by `close()`, which `forEachBackend` calls
 * once the backend's suite is done.
 */
function serverBackend(name, dialect, adminUri, quote, dropSql) {
  let admin = null
  const created = []
  const adminDialect = async () => (admin ??= await plug.openIsolatedDialect({ dialect, uri: adminUri }))
  return {
    name,
    dialect,
    async probe() {
      try {
        const d = await adminDialect()
        return (await d.testConnection()) ? { ok: true } : { ok: false, reason: `${name} server at ${adminUri} did not answer` }
      } catch (e) {
        admin = null
        return { ok: false, reason: `${name} server at ${adminUri} not reachable (${e.code}: ${e.message})` }
      }
    },
    /** Creates an empty database and returns its connection options. */
    async fresh(tag) {
      const db = uniqueName(tag)
      const d = await adminDialect()
      await d.executeRun(`CREATE DATABASE ${quote(db)}`)
      created.push(db)
      return { dialect, uri: adminUri.replace(/\/[^/]*$/, `/${db}`), database: db }
    },
    async close() {
      if (!admin) return
      for (const db of created.splice(0)) await admin.executeRun(dropSql(db)).catch(() => {})
      await admin.disconnect()
      admin = null
    },
  }
}

function sqliteBackend() {
  const dirs = []
  return {
    name: 'sqlite',
    dialect: 'sqlite',
    probe: async () => ({ ok: true }),
    async fresh(tag) {
      const dir = mkdtempSync(join(tmpdir(), `mosta-${tag}-`))
      dirs.push(dir)
      return { dialect: 'sqlite', uri: join(dir, `${tag}.db`), database: tag }
    },
    async close() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
    },
  }
}

export const BACKENDS = [
  sqliteBackend(),
  serverBackend('postgres', 'postgres', PG_ADMIN, (n) => `"${n}"`, (n) => `DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`),
  serverBackend('mariadb', 'mariadb', MY_ADMIN, (n) => `\`${n}\``, (n) => `DROP DATABASE IF EXISTS \`${n}\``),
]

/**
 * Defines `body(backend)` once per backend. An unreachable server prints one SKIP line,
 * except under CI=true where it is a failing test.
 */
export async function forEachBackend(title, body, { only } = {}) {
  for (const b of BACKENDS) {
    if (only && !only.includes(b.name)) continue
    const p = await b.probe()
    if (!p.ok) {
      if (process.env.CI === 'true') {
        describe(`${title} [${b.name}]`, () => it('database server is reachable', () => assert.fail(p.reason)))
      } else {
        console.log(`SKIP ${title} [${b.name}]: ${p.reason}`)
      }
      continue
    }
    describe(`${title} [${b.name}]`, () => {
      body(b)
      after(() => b.close()) // registered last: runs after the body's own after hooks
    })
  }
}

/** Asserts that `promise` rejects with a MostaError of `code` (and optional fields). */
export async function rejectsWith(promise, code, extra = {}) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  assert.ok(err, `expected a rejection with ${code}`)
  assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
  assert.ok(err instanceof Error, 'errors are Error instances')
  for (const [k, v] of Object.entries(extra)) {
    if (v instanceof RegExp) assert.match(String(err[k]), v, `${k}`)
    else assert.equal(err[k], v, `${k} of ${err.message}`)
  }
  return err
}

/** Runs `fn` with env variables set, restoring them after. */
export async function withEnv(vars, fn) {
  const saved = {}
  for (const k of Object.keys(vars)) {
    saved[k] = process.env[k]
    if (vars[k] === undefined) delete process.env[k]
    else process.env[k] = vars[k]
  }
  try {
    return await fn()
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

/** Clears every variable the package reads, so a test starts from a known environment. */
export function clearPackageEnv() {
  for (const k of Object.keys(process.env)) {
    if (/(^|_)(MOSTA_|DB_|SGBD_URI)/.test(k)) delete process.env[k]
  }
}

/** A clean slate for a test of the package API: no package variables, schemas or dialects. */
export function resetPackage() {
  clearPackageEnv()
  plug.clearRegistry()
  plug.resetDialect()
  plug.resetSystemDialect()
}

/**
 * Opens a `$transaction` on `d` that holds its connection (after one read of `schema`)
 * until `release()`; `done` settles when it has committed.
 */
export async function holdTransaction(d, schema) {
  let release, holding
  const gate = new Promise((r) => (release = r))
  const held = new Promise((r) => (holding = r))
  const done = d.$transaction(async (tx) => {
    await tx.count(schema, {})
    holding()
    await gate
  })
  await Promise.race([held, done])
  return { release, done }
}
