// Error codes not covered by the behavioural suite, and resilience of the pooled backends:
// connection failures, pool timeouts, dropped connections, TLS options, secrets in messages.
import { it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import plug from '../index.js'
import { forEachBackend, holdTransaction, rejectsWith } from './helpers.mjs'

const Item = { name: 'Item', collection: 'items', fields: { n: { type: 'number' } } }

await forEachBackend('errors', (b) => {
  let cfg
  let d
  const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
  before(async () => {
    cfg = await b.fresh('errors')
    d = await plug.openIsolatedDialect({ ...cfg, schemaStrategy: 'create' }, [Item])
  })
  after(() => d && d.disconnect())

  it('CHECK violations are E_CONSTRAINT; other database errors are E_DATABASE with the server code', async () => {
    const Checked = { name: 'Checked', collection: 'checked', fields: { n: { type: 'number' } } }
    await d.executeRun(`CREATE TABLE ${q('checked')} (${q('id')} VARCHAR(36) PRIMARY KEY, ${q('n')} DOUBLE PRECISION CHECK (${q('n')} > 0))`)
    await rejectsWith(d.create(Checked, { n: -1 }), 'E_CONSTRAINT', { dbCode: /./ })
    assert.equal((await d.create(Checked, { n: 2 })).n, 2)
    await rejectsWith(d.executeQuery('SELEKT 1'), 'E_DATABASE', { dbCode: /./ })
  })

  it('a disconnected dialect refuses calls and maintenance with E_CLOSED; testConnection answers false', async () => {
    const gone = await plug.openIsolatedDialect({ ...cfg, schemaStrategy: 'none' })
    await gone.disconnect()
    await rejectsWith(gone.count(Item, {}), 'E_CLOSED')
    await rejectsWith(gone.dropTable('items'), 'E_CLOSED')
    await rejectsWith(gone.truncateAll([Item]), 'E_CLOSED')
    await rejectsWith(gone.executeRun('DELETE FROM items'), 'E_CLOSED')
    assert.equal(await gone.testConnection(), false)
    assert.equal(await d.count(Item, {}) >= 0, true, 'the table is still there')
  })

  if (b.name === 'sqlite') {
    // The binding's SQLite entry point names sessions by number; a number is no key to a
    // connection owned by another thread (its queued calls could not be settled there).
    it('a SQLite session named from a worker thread is refused; its owner keeps working', async () => {
      await d.count(Item, {})
      const session = d._native.session
      const handle = d._handle(Item)
      const { Worker } = await import('node:worker_threads')
      const code = `
        const { parentPort, workerData } = require('node:worker_threads')
        const binding = require(workerData.addon)
        try {
          parentPort.postMessage({ ok: binding.sqliteCall(workerData.session, 'count', workerData.handle, '[{}]') })
        } catch (e) {
          parentPort.postMessage({ error: String(e.message) })
        }`
      const addon = new URL('../native.js', import.meta.url).pathname
      const answer = await new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { addon, session, handle } })
        w.once('message', (m) => w.terminate().then(() => resolve(m)))
        w.once('error', reject)
      })
      assert.equal(answer.ok, undefined, 'no answer from another thread')
      assert.match(answer.error, /E_INTERNAL/)
      assert.match(answer.error, /another thread/)
      assert.equal(typeof (await d.count(Item, {})), 'number')
    })
    return
  }

  const scheme = b.name === 'postgres' ? 'postgres' : 'mysql'
  it('an unreachable server is E_CONNECTION and the password never shows', async () => {
    const e = await rejectsWith(plug.openIsolatedDialect({ dialect: b.dialect, uri: `${scheme}://root:s3cr3t-pw@127.0.0.1:1/nope` }), 'E_CONNECTION')
    assert.doesNotMatch(e.message, /s3cr3t-pw/)
    assert.doesNotMatch(JSON.stringify(e), /s3cr3t-pw/)
  })

  it('calls settle on the thread that made them; a worker ended while its call waits harms nothing', async () => {
    const { Worker } = await import('node:worker_threads')
    const index = new URL('../index.js', import.meta.url).pathname
    const sleep = b.name === 'postgres' ? 'SELECT pg_sleep(0.4) AS s' : 'SELECT SLEEP(0.4) AS s'
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const plug = require(workerData.index)
      ;(async () => {
        const d = await plug.openIsolatedDialect(workerData.cfg)
        parentPort.postMessage({ one: await d.executeQuery('SELECT 1 AS one') })
        d.executeQuery(workerData.sleep) // still waiting when the worker is ended
        parentPort.postMessage({ waiting: true })
      })()`
    const messages = []
    await new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { index, cfg, sleep } })
      w.on('message', (m) => {
        messages.push(m)
        if (m.waiting) w.terminate().then(resolve, reject)
      })
      w.once('error', reject)
    })
    assert.deepEqual(messages[0], { one: [{ one: 1 }] }, "the worker's own call settled there")
    // The worker's answer comes after its thread is gone; this thread keeps working.
    await new Promise((r) => setTimeout(r, 600))
    assert.deepEqual(await d.executeQuery('SELECT 1 AS one'), [{ one: 1 }])
  })

  if (b.name === 'mariadb') {
    it('the dialect name mysql reaches the same server (dialectType says which)', async () => {
      const my = await plug.openIsolatedDialect({ dialect: 'mysql', uri: cfg.uri })
      assert.equal(my.dialectType, 'mysql')
      assert.deepEqual(await my.executeQuery('SELECT 1 AS one'), [{ one: 1 }])
      await my.disconnect()
    })
  }

  it('a malformed URL is E_CONFIG', async () => {
    await rejectsWith(plug.openIsolatedDialect({ dialect: b.dialect, uri: 'not a url' }), 'E_CONFIG')
  })

  it('TLS options are honoured', async () => {
    const sep = cfg.uri.includes('?') ? '&' : '?'
    const open = (opt) => plug.openIsolatedDialect({ dialect: b.dialect, uri: `${cfg.uri}${sep}${opt}` })
    if (b.name === 'postgres') {
      // This server has TLS with a self-signed certificate.
      const sslOf = async (opt) => {
        const c = await open(opt)
        const [row] = await c.executeQuery('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
        await c.disconnect()
        return row.ssl
      }
      assert.equal(await sslOf('sslmode=require'), true)
      assert.equal(await sslOf('sslmode=disable'), false)
      await rejectsWith(open('sslmode=verify-full'), 'E_CONNECTION')
    } else {
      // This server has no TLS: requiring it fails, disabling it works.
      const plain = await open('ssl-mode=DISABLED')
      assert.equal(await plain.testConnection(), true)
      await plain.disconnect()
      await rejectsWith(open('ssl-mode=REQUIRED'), 'E_CONNECTION')
    }
  })

  it('a call waiting for a busy pool fails with E_POOL_TIMEOUT instead of hanging', async () => {
    const small = await plug.openIsolatedDialect({ ...cfg, poolSize: 1, poolTimeoutMs: 200 })
    const held = await holdTransaction(small, Item)
    await rejectsWith(small.count(Item, {}), 'E_POOL_TIMEOUT')
    held.release()
    await held.done
    assert.equal(typeof (await small.count(Item, {})), 'number', 'the pool works again once free')
    await small.disconnect()
  })

  it('after the server kills its connections, the next call succeeds, read or write', async () => {
    const victim = await plug.openIsolatedDialect({ ...cfg, poolSize: 2 })
    await victim.create(Item, { n: 1 })
    const admin = await plug.openIsolatedDialect({ ...cfg, poolSize: 1 })
    const killOthers = async () => {
      if (b.name === 'postgres') {
        await admin.executeQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
      } else {
        const ids = await admin.executeQuery('SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()')
        for (const { id } of ids) await admin.executeRun(`KILL ${Number(id)}`).catch(() => {})
      }
    }
    // A read first: it runs again on a fresh connection.
    await killOthers()
    assert.equal(await victim.count(Item, { n: 1 }), 1)
    assert.equal((await victim.create(Item, { n: 2 })).n, 2)
    // A write first, on a connection idle for a while (as after a restart): it is checked
    // before anything is sent, and applied exactly once.
    await killOthers()
    await new Promise((r) => setTimeout(r, 700))
    assert.equal((await victim.create(Item, { n: 3 })).n, 3)
    assert.equal(await victim.count(Item, { n: 3 }), 1)
    // A transaction opened on a dead connection opens again on a fresh one.
    await killOthers()
    await victim.$transaction(async (tx) => tx.create(Item, { n: 4 }))
    assert.equal(await victim.count(Item, {}), 4)
    await admin.disconnect()
    await victim.disconnect()
  })

  it('a large read cut off mid-answer comes back whole or fails, never with rows twice', async () => {
    const Big = { name: 'Big', collection: 'bigs', fields: { n: { type: 'number' }, pad: { type: 'string' } } }
    const victim = await plug.openIsolatedDialect({ ...cfg, poolSize: 1, schemaStrategy: 'update' }, [Big])
    const admin = await plug.openIsolatedDialect({ ...cfg, poolSize: 1 })
    const N = 6000
    await victim.$transaction(async (tx) => {
      for (let i = 0; i < N; i++) await tx.create(Big, { n: i, pad: 'p'.repeat(200) })
    })
    const [{ pid }] = await victim.executeQuery(b.name === 'postgres' ? 'SELECT pg_backend_pid() AS pid' : 'SELECT CONNECTION_ID() AS pid')
    // The connection is killed when the first piece of the answer reaches JavaScript; the
    // pooled connection was idle before the read, so the read runs again on a new one.
    const receive = victim._pieces.receive.bind(victim._pieces)
    let kill
    victim._pieces.receive = (id, json) => {
      kill ??= admin.executeRun(b.name === 'postgres' ? `SELECT pg_terminate_backend(${Number(pid)})` : `KILL ${Number(pid)}`).catch(() => {})
      receive(id, json)
    }
    const got = await victim.find(Big, {}, { sort: { n: 1 } }).catch((e) => e)
    await kill
    if (got instanceof Error) assert.equal(got.code, 'E_CONNECTION')
    else assert.deepEqual(got.map((r) => r.n), Array.from({ length: N }, (_, i) => i))
    assert.equal((await victim.find(Big, {})).length, N, 'the next large read is whole')
    await admin.disconnect()
    await victim.disconnect()
  })

  it('after DDL on one pooled connection, the others write in transactions without stale statements', async () => {
    const Gizmo = { name: 'Gizmo', collection: 'gizmos', fields: { n: { type: 'number' } } }
    const g = await plug.openIsolatedDialect({ ...cfg, schemaStrategy: 'create', poolSize: 2 }, [Gizmo])
    try {
      // Both connections at once, each preparing the INSERT … RETURNING * of gizmos.
      const both = async (n) => {
        let release
        const gate = new Promise((r) => (release = r))
        let open = 0
        const one = (i) =>
          g.$transaction(async (tx) => {
            const made = await tx.create(Gizmo, { n: n + i })
            if (++open === 2) release()
            await gate
            return made
          })
        return Promise.all([one(0), one(1)])
      }
      await both(0)
      // One connection changes the table; the other's prepared INSERT now describes the old
      // row. Inside a transaction a stale statement cannot be retried: it must not happen.
      await g.executeRun(`ALTER TABLE ${q('gizmos')} ADD ${q('note')} VARCHAR(20) DEFAULT 'x'`)
      const made = await both(10)
      assert.deepEqual(made.map((r) => [r.n, r.note]), [[10, 'x'], [11, 'x']])
    } finally {
      await g.disconnect()
    }
  })

  it('a transaction cut off by the server is rolled back, never half-applied', async () => {
    const victim = await plug.openIsolatedDialect({ ...cfg, poolSize: 2 })
    const admin = await plug.openIsolatedDialect({ ...cfg, poolSize: 1 })
    const before = await victim.count(Item, {})
    const failed = await victim
      .$transaction(async (tx) => {
        await tx.create(Item, { n: 100 })
        const [{ pid }] = await tx.executeQuery(b.name === 'postgres' ? 'SELECT pg_backend_pid() AS pid' : 'SELECT CONNECTION_ID() AS pid')
        await admin.executeRun(b.name === 'postgres' ? `SELECT pg_terminate_backend(${Number(pid)})` : `KILL ${Number(pid)}`).catch(() => {})
        await tx.create(Item, { n: 101 })
      })
      .catch((e) => e)
    assert.ok(failed instanceof Error, 'the transaction reports the lost connection')
    assert.equal(await victim.count(Item, {}), before, 'nothing of it was applied')
    await admin.disconnect()
    await victim.disconnect()
  })
})
