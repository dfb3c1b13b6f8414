// `npm run bench`: our package against the raw drivers, same schema, data and machine.
// Prints a table of ratios (ours/raw, lower is better) and writes bench/RESULTS.md.
//
//   node bench/run.mjs [--quick] [--only sqlite|postgres|mysql] [--runs N] [--pool N]
//                      [--workloads key,key] [--memory-calls N] [--no-memory] [--verbose]
//
// The bench has its own dependencies (bench/package.json), installed on first run so the
// package itself stays lean.

import { execSync, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

// ------------------------------------------------------------ options

function parseArgs(argv) {
  const o = { quick: false, only: null, runs: 7, pool: 10, workloads: null, memoryCalls: null, memory: true, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--quick') o.quick = true
    else if (a === '--only') o.only = next()
    else if (a === '--runs') o.runs = Number(next())
    else if (a === '--pool') o.pool = Number(next())
    else if (a === '--workloads') o.workloads = next().split(',')
    else if (a === '--memory-calls') o.memoryCalls = Number(next())
    else if (a === '--no-memory') o.memory = false
    else if (a === '--verbose') o.verbose = true
    else throw new Error(`unknown option ${a} (see the header of bench/run.mjs)`)
  }
  if (o.only && !['sqlite', 'postgres', 'mysql'].includes(o.only)) throw new Error('--only takes sqlite, postgres or mysql')
  if (!(o.runs >= 1)) throw new Error('--runs takes a positive integer')
  if (o.memoryCalls === null) o.memoryCalls = o.quick ? 100_000 : 1_000_000
  return o
}

const opts = parseArgs(process.argv.slice(2))

if (!['better-sqlite3', 'pg', 'mysql2'].every((p) => existsSync(join(here, 'node_modules', p)))) {
  console.log('Installing the bench dependencies (bench/package.json)…')
  execSync(`npm ${existsSync(join(here, 'package-lock.json')) ? 'ci' : 'install'} --prefix "${here}" --no-audit --no-fund`, { stdio: 'inherit' })
}

const { WORKLOADS, TARGETS, seedRows, makeContext } = await import('./workloads.mjs')
const { summarize, table, memoryTable, writeResults, machine } = await import('./report.mjs')
const { openOurs } = await import('./contenders/ours.mjs')
const backends = {
  sqlite: async () => (await import('./contenders/sqlite.mjs')).sqliteBackend(),
  postgres: async () => (await import('./contenders/postgres.mjs')).postgresBackend({ poolSize: opts.pool }),
  mysql: async () => (await import('./contenders/mysql.mjs')).mysqlBackend({ poolSize: opts.pool }),
}

// A full GC before each timed run, so one contender's garbage is not collected on the other's time.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const ROWS = 100_000
/** Longest time one contender's run of one workload should take. */
const BUDGET_MS = opts.quick ? 300 : 1500
/**
 * Workloads whose runs are short get more of them (up to three times `--runs`), as many as
 * fit in this time: one stall of the machine then moves their median less.
 */
const RUNS_BUDGET_MS = opts.quick ? 1000 : 12000
const idx = opts.quick ? 1 : 0
const rows = []
const notes = []

// ------------------------------------------------------------ measuring

const now = () => Number(process.hrtime.bigint()) / 1e6

async function timed(w, c, ctx, n) {
  if (w.prepare) await w.prepare(c, ctx)
  gc()
  const t0 = now()
  await w.run(c, ctx, n)
  return now() - t0
}

/**
 * Interleaved runs of one workload; returns the operation count and the per-run ratios
 * ours/raw. The warm-up also sizes the runs: the workload's operation count, or for the
 * workloads the issue gives no count for, fewer when one run would exceed the time budget.
 */
async function measure(w, ours, raw, ctx) {
  const max = w.ops[idx]
  const probe = Math.max(1, Math.ceil(max / 10))
  let slowest = 0
  for (const c of [ours, raw]) slowest = Math.max(slowest, (await timed(w, c, ctx, probe)) / probe)
  const n = w.fixed ? max : Math.max(Math.min(max, 5), Math.min(max, Math.floor(BUDGET_MS / slowest)))
  const ratios = []
  const started = now()
  for (let r = 0; r < 3 * opts.runs; r++) {
    // Past `--runs`, one more run only while the runs so far say it fits the budget.
    if (r >= opts.runs && ((now() - started) * (r + 1)) / r > RUNS_BUDGET_MS) break
    const order = r % 2 === 0 ? [ours, raw] : [raw, ours]
    const t = new Map()
    for (const c of order) t.set(c, await timed(w, c, ctx, n))
    ratios.push(t.get(ours) / t.get(raw))
    if (opts.verbose) console.log(`  ${w.key} run ${r + 1}: ours ${((t.get(ours) * 1000) / n).toFixed(1)} µs/op, raw ${((t.get(raw) * 1000) / n).toFixed(1)} µs/op`)
  }
  return { n, ratios }
}

/** Values as a user compares them: dates as ISO text, keys sorted, floats rounded. */
function normal(v) {
  if (v instanceof Date) return v.toISOString()
  if (Array.isArray(v)) return v.map(normal)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, normal(v[k])]))
  if (typeof v === 'number' && !Number.isInteger(v)) return Number(v.toPrecision(10))
  return v
}

/** Both contenders must return the same thing, or the comparison is meaningless. */
async function check(label, ours, raw, ctx) {
  const same = async (what, f) => {
    const [a, b] = [JSON.stringify(normal(await f(ours))), JSON.stringify(normal(await f(raw)))]
    if (a !== b) {
      const msg = `${label}: ${what} differs between data-plug and ${raw.name}: ${a.slice(0, 300)} vs ${b.slice(0, 300)}`
      console.warn(`WARNING ${msg}`)
      notes.push(msg)
    }
  }
  await same('findById', (c) => c.findById(ctx.ids[5]))
  await same('find50', async (c) => (await c.find50()).map((r) => r.id))
  await same('find10k (length)', async (c) => (await c.find10k()).length)
  await same('count', (c) => c.count())
  await same('aggregate', async (c) => (await c.aggregate()).sort((x, y) => (x.category < y.category ? -1 : 1)))
}

async function runBackend(key) {
  let backend
  try {
    backend = await backends[key]()
  } catch (e) {
    const label = { sqlite: 'SQLite', postgres: 'PostgreSQL', mysql: 'MySQL (MariaDB)' }[key]
    rows.push({ backend: label, workload: 'all', skip: `server not reachable: ${e.message}` })
    console.log(`SKIP ${label}: server not reachable (${e.message})`)
    return
  }
  const label = backend.label
  let ours, raw
  try {
    const seeded = seedRows(ROWS)
    try {
      // Our DDL lays out the tables; the rows go in through the raw driver (fast, and the same
      // rows for both sides); then we reopen as an application does on an existing database.
      await (await openOurs(backend.ourOptions, 'create')).close()
      console.log(`${label}: seeding ${ROWS.toLocaleString('en')} rows…`)
      await backend.seed(seeded)
      ours = await openOurs(backend.ourOptions)
    } catch (e) {
      rows.push({ backend: label, workload: 'all', skip: `setup failed (our dialect or seeding): ${e.code || ''} ${e.message}` })
      console.log(`SKIP ${label}: setup failed (${e.code || ''} ${e.message})`)
      return
    }
    const maxCreates = Math.max(...WORKLOADS.filter((w) => w.key.startsWith('create')).map((w) => w.ops[idx]))
    const ctx = makeContext(seeded, maxCreates)
    raw = await backend.openRaw()
    await check(label, ours, raw, ctx)
    for (const w of WORKLOADS) {
      if ((w.servers && key === 'sqlite') || (opts.workloads && !opts.workloads.includes(w.key))) continue
      process.stdout.write(`${label} / ${w.label}… `)
      try {
        const { n, ratios } = await measure(w, ours, raw, ctx)
        const stats = summarize(ratios)
        rows.push({ backend: label, workload: w.label, ops: n, stats, target: TARGETS[key][w.key] })
        console.log(`median ${stats.median.toFixed(2)} (${stats.min.toFixed(2)}–${stats.max.toFixed(2)})`)
      } catch (e) {
        rows.push({ backend: label, workload: w.label, skip: `failed: ${e.code || ''} ${e.message}`.slice(0, 160) })
        console.log(`FAILED (${e.code || ''} ${e.message})`)
      }
    }
  } finally {
    await ours?.close().catch(() => {})
    raw?.close()
    await backend.drop().catch((e) => console.warn(`could not drop the ${key} bench database: ${e.message}`))
  }
}

function runMemory() {
  console.log(`SQLite: memory over ${opts.memoryCalls.toLocaleString('en')} findById calls…`)
  try {
    const warmup = Math.min(100_000, opts.memoryCalls)
    const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'memory.mjs'), String(opts.memoryCalls), String(warmup), String(ROWS)], { encoding: 'utf8' })
    return JSON.parse(out.trim().split('\n').pop())
  } catch (e) {
    return { skip: e.message.split('\n')[0] }
  }
}

// ------------------------------------------------------------ main

console.log(machine(root))
for (const key of Object.keys(backends)) {
  if (!opts.only || opts.only === key) await runBackend(key)
}
const mem = opts.memory && (!opts.only || opts.only === 'sqlite') ? runMemory() : null

console.log(`\n${table(rows)}\n`)
if (mem) console.log(`${memoryTable(mem)}\n`)
const out = join(here, 'RESULTS.md')
writeResults(out, { root, settings: { runs: opts.runs, runsBudgetMs: RUNS_BUDGET_MS, quick: opts.quick, poolSize: opts.pool, budgetMs: BUDGET_MS }, rows, mem, notes })
console.log(`Written to ${out}`)
process.exit(0)
