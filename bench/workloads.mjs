// The schema, the data and the workloads every contender runs. Contenders expose the same
// small interface (see contenders/*.mjs); a workload only says how many operations it does
// and which interface method each one calls.

import { randomUUID } from 'node:crypto'

/** Ten columns: id, seven fields, createdAt, updatedAt. */
const fields = {
  name: { type: 'string', required: true },
  email: { type: 'string' },
  age: { type: 'number' },
  score: { type: 'number' },
  active: { type: 'boolean' },
  category: { type: 'string' },
  city: { type: 'string' },
}
const indexes = [{ fields: { category: 'asc' } }, { fields: { age: 'asc' } }]

/** The table every read and update runs on (seeded with `rows` rows). */
export const Items = { name: 'BenchItem', collection: 'bench_items', timestamps: true, fields, relations: {}, indexes }
/** The table `create` writes into, emptied (by each contender) before every timed run. */
export const Writes = { name: 'BenchWrite', collection: 'bench_writes', timestamps: true, fields, relations: {}, indexes }

export const COLUMNS = ['id', ...Object.keys(fields), 'createdAt', 'updatedAt']
export const CATEGORIES = 10

// The queries, as our API takes them. The raw contenders run the SQL these produce.
export const FIND50 = { filter: { category: 'c3', age: { $gte: 40 } }, options: { sort: { score: -1 }, limit: 50 } }
export const FIND10K = { filter: { category: 'c1' } } // 1 row in CATEGORIES
export const COUNT = { filter: { category: 'c2', active: true } }
export const AGGREGATE = [{ $match: { active: true } }, { $group: { _by: '$category', n: { $count: true }, avg: { $avg: '$score' } } }]

/** A small seeded PRNG (mulberry32), so every run and contender sees the same data. */
export function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const CITIES = ['Paris', 'Lyon', 'Lille', 'Nantes', 'Nice', 'Rennes', 'Brest', 'Metz', 'Dijon', 'Tours', 'Caen', 'Pau']

/** The user data of row `i` (what `create` receives). */
export function rowData(i, rnd) {
  return {
    name: `User ${i}`,
    email: `user${i}@example.com`,
    age: 18 + Math.floor(rnd() * 62),
    score: Math.round(rnd() * 100000) / 100,
    active: i % 3 !== 0,
    category: `c${i % CATEGORIES}`,
    city: CITIES[i % CITIES.length],
  }
}

function uuidFrom(rnd) {
  const h = Array.from({ length: 32 }, () => Math.floor(rnd() * 16).toString(16)).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`
}

/** The seeded rows: complete records (id and timestamps included), in column order. */
export function seedRows(n) {
  const rnd = prng(42)
  const base = Date.UTC(2024, 0, 1)
  const rows = []
  for (let i = 0; i < n; i++) {
    const at = new Date(base + i * 1000).toISOString()
    rows.push({ id: uuidFrom(rnd), ...rowData(i, rnd), createdAt: at, updatedAt: at })
  }
  return rows
}

/** What a raw `create` does besides the INSERT: the id and timestamps our create sets. */
export function rawRecord(data) {
  const now = new Date().toISOString()
  return { id: randomUUID(), ...data, createdAt: now, updatedAt: now }
}

// ------------------------------------------------------------ loops

/** Runs `fn(i)` for i < n, one at a time; awaits only what returns a promise. */
async function serial(n, fn) {
  for (let i = 0; i < n; i++) {
    const r = fn(i)
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') await r
  }
}

/** Runs `fn(i)` for i < n with `width` calls in flight. */
async function concurrent(n, width, fn) {
  let next = 0
  const worker = async () => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: width }, worker))
}

// ------------------------------------------------------------ workloads

/**
 * Each workload: `ops` (full/quick; `fixed`: the count, never reduced to fit the
 * time budget), `prepare` (untimed, before every timed run), `run`.
 * `ctx` holds the seeded ids, a lookup order and the data to create.
 * `throughput`: reported as raw/ours throughput (the same number as ours/raw time).
 */
export const WORKLOADS = [
  { key: 'findById', label: 'findById, one at a time (concurrency 1)', ops: [20000, 2000], fixed: true, run: (c, ctx, n) => serial(n, (i) => c.findById(ctx.lookup(i))) },
  { key: 'find50', label: 'find: 2 conditions + sort + limit 50', ops: [2000, 200], run: (c, _ctx, n) => serial(n, () => c.find50()) },
  { key: 'find10k', label: 'find returning 10k rows', ops: [20, 3], run: (c, _ctx, n) => serial(n, () => c.find10k()) },
  {
    key: 'create',
    label: 'create one by one',
    ops: [10000, 1000],
    fixed: true,
    prepare: (c) => c.resetWrites(),
    run: (c, ctx, n) => serial(n, (i) => c.create(ctx.newData[i])),
  },
  {
    key: 'createTx',
    label: 'create in one $transaction',
    ops: [10000, 1000],
    fixed: true,
    prepare: (c) => c.resetWrites(),
    run: (c, ctx, n) => c.createInTransaction(ctx.newData.slice(0, n)),
  },
  { key: 'update', label: 'update by id', ops: [5000, 500], run: (c, ctx, n) => serial(n, (i) => c.update(ctx.lookup(i), { score: i % 1000 })) },
  { key: 'count', label: 'count with a filter', ops: [2000, 200], run: (c, _ctx, n) => serial(n, () => c.count()) },
  { key: 'aggregate', label: 'aggregate with $group', ops: [100, 10], run: (c, _ctx, n) => serial(n, () => c.aggregate()) },
  {
    key: 'findById32',
    label: 'findById, concurrency 32 (throughput raw/ours)',
    servers: true,
    throughput: true,
    ops: [20000, 2000],
    fixed: true,
    run: (c, ctx, n) => concurrent(n, 32, (i) => c.findById(ctx.lookup(i))),
  },
]

/** Targets from issue 5 (ratio ours/raw, or raw/ours throughput), per backend. */
export const TARGETS = {
  sqlite: { findById: 1.5, find50: 1.3, find10k: 1.3, create: 1.3, createTx: 1.3 },
  postgres: { findById: 1.2, find50: 1.1, find10k: 1.1, create: 1.2, createTx: 1.2, findById32: 1.0 },
  mysql: { findById: 1.2, find50: 1.1, find10k: 1.1, create: 1.2, createTx: 1.2, findById32: 1.0 },
}

/** The shared context of one backend: ids to look up, data to create. */
export function makeContext(seeded, maxCreates) {
  const rnd = prng(7)
  const order = Array.from({ length: 1 << 16 }, () => Math.floor(rnd() * seeded.length))
  const ids = seeded.map((r) => r.id)
  const drnd = prng(99)
  const newData = Array.from({ length: maxCreates }, (_, i) => rowData(1_000_000 + i, drnd))
  return { ids, newData, lookup: (i) => ids[order[i & 0xffff]] }
}
