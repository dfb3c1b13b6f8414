// PostgreSQL: a database `bench_<pid>` created on 127.0.0.1:5432 (user postgres) and dropped
// after. The raw contender is pg with a Pool and named (prepared) queries.

import { createRequire } from 'node:module'
import { randomUUID } from 'node:crypto'
import { COLUMNS, FIND50, FIND10K, COUNT } from '../workloads.mjs'

const require = createRequire(import.meta.url)
const HOST = process.env.BENCH_PG_URI || 'postgres://postgres@127.0.0.1:5432'
const cols = COLUMNS.map((c) => `"${c}"`).join(', ')
const marks = (row) => COLUMNS.map((_, i) => `$${row * COLUMNS.length + i + 1}`).join(', ')
const values = (r) => COLUMNS.map((c) => r[c])
const q = (name, text) => (values) => ({ name, text, values })

export async function postgresBackend({ poolSize }) {
  const { Client, Pool } = require('pg')
  const db = `bench_${process.pid}`
  const admin = new Client({ connectionString: `${HOST}/postgres` })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${db}`)
  await admin.query(`CREATE DATABASE ${db}`)
  const uri = `${HOST}/${db}`
  const pool = new Pool({ connectionString: uri, max: poolSize })
  pool.on('error', () => {}) // an idle client dropped by the server (DROP DATABASE … FORCE at the end)
  return {
    key: 'postgres',
    label: 'PostgreSQL',
    rawName: 'pg',
    ourOptions: { dialect: 'postgres', uri, poolSize },

    async seed(rows) {
      for (let i = 0; i < rows.length; i += 1000) {
        const chunk = rows.slice(i, i + 1000)
        const text = `INSERT INTO "bench_items" (${cols}) VALUES ${chunk.map((_, j) => `(${marks(j)})`).join(', ')}`
        await pool.query(text, chunk.flatMap(values))
      }
      await pool.query('ANALYZE "bench_items"')
    },

    async openRaw() {
      const byId = q('byId', 'SELECT * FROM "bench_items" WHERE "id" = $1')
      const find50 = q('find50', 'SELECT * FROM "bench_items" WHERE "category" = $1 AND "age" >= $2 ORDER BY "score" DESC LIMIT 50')
      const find10k = q('find10k', 'SELECT * FROM "bench_items" WHERE "category" = $1')
      const insert = q('insert', `INSERT INTO "bench_writes" (${cols}) VALUES (${marks(0)})`)
      const update = q('update', 'UPDATE "bench_items" SET "score" = $1, "updatedAt" = $2 WHERE "id" = $3 RETURNING *')
      const count = q('count', 'SELECT COUNT(*) AS "cnt" FROM "bench_items" WHERE "category" = $1 AND "active" = $2')
      const agg = q('agg', 'SELECT "category" AS "category", COUNT(*) AS "n", AVG("score") AS "avg" FROM "bench_items" WHERE "active" = $1 GROUP BY "category"')
      const record = (data) => {
        const now = new Date()
        return { id: randomUUID(), ...data, createdAt: now, updatedAt: now }
      }
      const create = async (client, data) => {
        const r = record(data)
        await client.query(insert(values(r)))
        return r
      }
      return {
        name: 'pg',
        findById: async (id) => (await pool.query(byId([id]))).rows[0] ?? null,
        find50: async () => (await pool.query(find50([FIND50.filter.category, FIND50.filter.age.$gte]))).rows,
        find10k: async () => (await pool.query(find10k([FIND10K.filter.category]))).rows,
        create: (data) => create(pool, data),
        async createInTransaction(list) {
          const client = await pool.connect()
          try {
            await client.query('BEGIN')
            for (const data of list) await create(client, data)
            await client.query('COMMIT')
          } catch (e) {
            await client.query('ROLLBACK')
            throw e
          } finally {
            client.release()
          }
        },
        update: async (id, patch) => (await pool.query(update([patch.score, new Date(), id]))).rows[0] ?? null,
        count: async () => Number((await pool.query(count([COUNT.filter.category, true]))).rows[0].cnt),
        aggregate: async () => (await pool.query(agg([true]))).rows.map((r) => ({ ...r, n: Number(r.n) })),
        resetWrites: async () => {
          await pool.query('TRUNCATE "bench_writes"')
          await pool.query('CHECKPOINT') // see contenders/ours.mjs
        },
        close: () => {},
      }
    },

    async drop() {
      await pool.end()
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
      await admin.end()
    },
  }
}
