// SQLite: database files in a temp folder; the raw contender is better-sqlite3 with
// prepared statements, called synchronously as its users call it.
//
// Each contender has its own copy of the database: two SQLite libraries in one process must
// never open the same file (closing a file drops the other library's POSIX locks, and the
// database gets corrupted; https://sqlite.org/howtocorrupt.html#multiple_copies_of_sqlite).

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { COLUMNS, FIND50, FIND10K, COUNT, rawRecord } from '../workloads.mjs'

const require = createRequire(import.meta.url)
const cols = COLUMNS.map((c) => `"${c}"`).join(', ')
const marks = COLUMNS.map(() => '?').join(', ')
const values = (r) => COLUMNS.map((c) => (c === 'active' ? (r.active ? 1 : 0) : r[c]))
/** SQLite has no boolean: the raw reader converts it, as our API returns booleans. */
const bool = (r) => {
  if (r) r.active = r.active === null ? null : r.active === 1
  return r
}

export async function sqliteBackend() {
  const Database = require('better-sqlite3')
  const dir = mkdtempSync(join(tmpdir(), 'data-plug-bench-'))
  const ours = join(dir, 'ours.db')
  const raw = join(dir, 'raw.db')
  return {
    key: 'sqlite',
    label: 'SQLite',
    rawName: 'better-sqlite3',
    ourOptions: { dialect: 'sqlite', uri: ours },

    /** Fills our database (its tables already created by us), then copies it for the raw side. */
    seed(rows) {
      const db = new Database(ours)
      const ins = db.prepare(`INSERT INTO "bench_items" (${cols}) VALUES (${marks})`)
      db.transaction(() => rows.forEach((r) => ins.run(values(r))))()
      db.exec('ANALYZE')
      db.pragma('wal_checkpoint(TRUNCATE)')
      db.pragma('journal_mode = DELETE')
      db.close()
      copyFileSync(ours, raw)
    },

    async openRaw() {
      const db = new Database(raw)
      db.pragma('journal_mode = WAL')
      db.pragma('foreign_keys = ON')
      const byId = db.prepare('SELECT * FROM "bench_items" WHERE "id" = ?')
      const find50 = db.prepare('SELECT * FROM "bench_items" WHERE "category" = ? AND "age" >= ? ORDER BY "score" DESC LIMIT 50')
      const find10k = db.prepare('SELECT * FROM "bench_items" WHERE "category" = ?')
      const insert = db.prepare(`INSERT INTO "bench_writes" (${cols}) VALUES (${marks})`)
      const update = db.prepare('UPDATE "bench_items" SET "score" = ?, "updatedAt" = ? WHERE "id" = ? RETURNING *')
      const count = db.prepare('SELECT COUNT(*) AS "cnt" FROM "bench_items" WHERE "category" = ? AND "active" = ?')
      const agg = db.prepare('SELECT "category" AS "category", COUNT(*) AS "n", AVG("score") AS "avg" FROM "bench_items" WHERE "active" = ? GROUP BY "category"')
      const create = (data) => {
        const r = rawRecord(data)
        insert.run(values(r))
        return r
      }
      const createAll = db.transaction((list) => list.forEach(create))
      return {
        name: 'better-sqlite3',
        findById: (id) => bool(byId.get(id) ?? null),
        find50: () => find50.all(FIND50.filter.category, FIND50.filter.age.$gte).map(bool),
        find10k: () => find10k.all(FIND10K.filter.category).map(bool),
        create,
        createInTransaction: (list) => createAll(list),
        update: (id, patch) => bool(update.get(patch.score, new Date().toISOString(), id) ?? null),
        count: () => count.get(COUNT.filter.category, 1).cnt,
        aggregate: () => agg.all(1),
        // A timed write run starts from an empty write-ahead log on both sides: otherwise
        // a checkpoint (page writes and fsyncs) lands in one contender's run and not the
        // other's, depending on what earlier runs left in the log.
        resetWrites: () => {
          db.exec('DELETE FROM "bench_writes"')
          db.pragma('wal_checkpoint(TRUNCATE)')
        },
        close: () => db.close(),
      }
    },

    async drop() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
