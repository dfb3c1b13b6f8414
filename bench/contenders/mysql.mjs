// MySQL/MariaDB: a database `bench_<pid>` created on 127.0.0.1:3306 (root) and dropped
// after. The raw contender is mysql2/promise with a pool and `execute` (prepared statements).

import { createRequire } from 'node:module'
import { randomUUID } from 'node:crypto'
import { COLUMNS, FIND50, FIND10K, COUNT } from '../workloads.mjs'

const require = createRequire(import.meta.url)
const HOST = process.env.BENCH_MYSQL_URI || 'mysql://root@127.0.0.1:3306'
const cols = COLUMNS.map((c) => `\`${c}\``).join(', ')
const marks = COLUMNS.map(() => '?').join(', ')
/** Dates go in as Date objects (mysql2 writes them in local time, as our DATETIMEs are). */
const values = (r) => COLUMNS.map((c) => (c === 'createdAt' || c === 'updatedAt' ? new Date(r[c]) : c === 'active' ? (r.active ? 1 : 0) : r[c]))
/** TINYINT(1) comes back as a number: the raw reader converts it, as our API returns booleans. */
const bool = (r) => {
  if (r) r.active = r.active === null ? null : r.active === 1
  return r
}

export async function mysqlBackend({ poolSize }) {
  const mysql = require('mysql2/promise')
  const db = `bench_${process.pid}`
  const admin = await mysql.createConnection(HOST)
  await admin.query(`DROP DATABASE IF EXISTS ${db}`)
  await admin.query(`CREATE DATABASE ${db}`)
  const uri = `${HOST}/${db}`
  const pool = mysql.createPool({ uri, connectionLimit: poolSize })
  return {
    key: 'mysql',
    label: 'MySQL (MariaDB)',
    rawName: 'mysql2',
    ourOptions: { dialect: 'mysql', uri, poolSize },

    async seed(rows) {
      for (let i = 0; i < rows.length; i += 2000) {
        await pool.query(`INSERT INTO \`bench_items\` (${cols}) VALUES ?`, [rows.slice(i, i + 2000).map(values)])
      }
      await pool.query('ANALYZE TABLE `bench_items`')
    },

    async openRaw() {
      const create = async (conn, data) => {
        const now = new Date()
        const r = { id: randomUUID(), ...data, createdAt: now, updatedAt: now }
        await conn.execute(`INSERT INTO \`bench_writes\` (${cols}) VALUES (${marks})`, values(r))
        return r
      }
      const byId = async (id) => bool((await pool.execute('SELECT * FROM `bench_items` WHERE `id` = ?', [id]))[0][0] ?? null)
      return {
        name: 'mysql2',
        findById: byId,
        find50: async () =>
          (await pool.execute('SELECT * FROM `bench_items` WHERE `category` = ? AND `age` >= ? ORDER BY `score` DESC LIMIT 50', [FIND50.filter.category, FIND50.filter.age.$gte]))[0].map(bool),
        find10k: async () => (await pool.execute('SELECT * FROM `bench_items` WHERE `category` = ?', [FIND10K.filter.category]))[0].map(bool),
        create: (data) => create(pool, data),
        async createInTransaction(list) {
          const conn = await pool.getConnection()
          try {
            await conn.query('START TRANSACTION')
            for (const data of list) await create(conn, data)
            await conn.query('COMMIT')
          } catch (e) {
            await conn.query('ROLLBACK')
            throw e
          } finally {
            conn.release()
          }
        },
        // No UPDATE … RETURNING in MySQL/MariaDB: update, then read the row back.
        update: async (id, patch) => {
          await pool.execute('UPDATE `bench_items` SET `score` = ?, `updatedAt` = ? WHERE `id` = ?', [patch.score, new Date(), id])
          return byId(id)
        },
        count: async () => Number((await pool.execute('SELECT COUNT(*) AS `cnt` FROM `bench_items` WHERE `category` = ? AND `active` = ?', [COUNT.filter.category, 1]))[0][0].cnt),
        aggregate: async () =>
          (await pool.execute('SELECT `category` AS `category`, COUNT(*) AS `n`, AVG(`score`) AS `avg` FROM `bench_items` WHERE `active` = ? GROUP BY `category`', [1]))[0],
        resetWrites: () => pool.query('TRUNCATE TABLE `bench_writes`'),
        close: () => {},
      }
    },

    async drop() {
      await pool.end()
      await admin.query(`DROP DATABASE IF EXISTS ${db}`)
      await admin.end()
    },
  }
}
