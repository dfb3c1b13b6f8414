// Resident memory over many findById calls on SQLite, in a process of its own so the other
// workloads leave nothing behind. Prints one JSON line for run.mjs.
// Usage: node --expose-gc bench/memory.mjs <calls> <warmup> <rows>

import { sqliteBackend } from './contenders/sqlite.mjs'
import { openOurs } from './contenders/ours.mjs'
import { seedRows, makeContext } from './workloads.mjs'

const [calls, warmup, nrows] = process.argv.slice(2).map(Number)
const every = Math.max(1, Math.floor(calls / 10))

async function track(c, ctx) {
  const call = async (i) => {
    const r = c.findById(ctx.lookup(i))
    if (r && typeof r.then === 'function') await r
  }
  for (let i = 0; i < warmup; i++) await call(i)
  const rss = () => {
    globalThis.gc()
    return process.memoryUsage().rss
  }
  // Let V8 give back what the warm-up (and the seeding before it) left: a few full GCs with
  // idle time between them, so the start is not inflated by garbage not yet returned.
  for (let i = 0; i < 3; i++) {
    rss()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const start = rss()
  const samples = []
  for (let i = 0; i < calls; i++) {
    await call(i)
    if ((i + 1) % every === 0) samples.push(rss())
  }
  const pct = (x) => ((x - start) / start) * 100
  const worst = samples.reduce((w, x) => (Math.abs(pct(x)) > Math.abs(pct(w)) ? x : w), start)
  return { name: c.name, start, samples, maxDriftPct: pct(worst), endDriftPct: pct(samples[samples.length - 1]) }
}

const backend = await sqliteBackend()
await (await openOurs(backend.ourOptions, 'create')).close()
let seeded = seedRows(nrows)
backend.seed(seeded)
const ctx = makeContext(seeded, 0)
seeded = null
const ours = await openOurs(backend.ourOptions)
const results = [await track(ours, ctx)]
await ours.close()
const raw = await backend.openRaw()
results.push(await track(raw, ctx))
raw.close()
await backend.drop()
console.log(JSON.stringify({ calls, warmup, every, results }))
