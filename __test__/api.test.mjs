// The data-plug API: singletons, environment resolution, the system dialect, isolation.
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import plug from '../index.js'
import { rejectsWith, withEnv, resetPackage } from './helpers.mjs'

const Note = { name: 'Note', collection: 'notes', fields: { text: { type: 'string', required: true } }, relations: {}, indexes: [] }
const Audit = { name: 'Audit', collection: 'audits', timestamps: true, fields: { action: { type: 'string' } } }

describe('data-plug API', () => {
  let dir
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mosta-api-'))
    resetPackage()
  })
  afterEach(async () => {
    await plug.disconnect().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })

  const sqliteEnv = (file = 'app.db', extra = {}) => ({ DB_DIALECT: 'sqlite', SGBD_URI: join(dir, file), DB_SCHEMA_STRATEGY: 'update', ...extra })

  it('getDialect opens the dialect named by the environment, once', async () => {
    await withEnv(sqliteEnv(), async () => {
      plug.registerSchema(Note)
      const [a, b] = await Promise.all([plug.getDialect(), plug.getDialect()])
      assert.equal(a, b, 'concurrent first calls share one dialect')
      assert.equal(a.dialectType, 'sqlite')
      assert.equal(await plug.getDialect(), a)
      const n = await a.create(Note, { text: 'hi' })
      assert.equal((await a.findById(Note, n.id)).text, 'hi')
      assert.ok(existsSync(join(dir, 'app.db')))
    })
  })

  it('getDataMode, isNetMode, isOrmMode follow MOSTA_DATA through the profile cascade', async () => {
    assert.equal(plug.getDataMode(), 'orm')
    assert.equal(plug.isOrmMode(), true)
    await withEnv({ MOSTA_DATA: 'net' }, () => {
      assert.equal(plug.getDataMode(), 'net')
      assert.equal(plug.isNetMode(), true)
      assert.equal(plug.isOrmMode(), false)
    })
    await withEnv({ MOSTA_ENV: 'TEST', TEST_MOSTA_DATA: 'net', MOSTA_DATA: 'orm' }, () => assert.equal(plug.getDataMode(), 'net'))
    await withEnv({ MOSTA_ENV: 'TEST', TEST_MOSTA_DATA: '', MOSTA_DATA: 'orm' }, () => assert.equal(plug.getDataMode(), 'orm'))
    await withEnv({ MOSTA_DATA: 'cloud' }, () => {
      assert.throws(() => plug.getDataMode(), (e) => e.code === 'E_CONFIG' && /MOSTA_DATA/.test(e.message))
    })
  })

  it('missing or invalid variables are E_CONFIG naming the variable and the profile', async () => {
    await rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /DB_DIALECT is not defined/, field: 'DB_DIALECT' })
    await withEnv({ MOSTA_ENV: 'STAGING' }, async () => {
      await rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /MOSTA_ENV=STAGING .* expected STAGING_DB_DIALECT or DB_DIALECT/ })
    })
    await withEnv({ DB_DIALECT: 'sqlite' }, async () => {
      await rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /SGBD_URI is not defined[\s\S]*DB_DIALECT=sqlite requires/ })
    })
    await withEnv({ DB_DIALECT: 'oracle', SGBD_URI: 'x' }, async () => {
      await rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /Unknown dialect "oracle". Supported: sqlite, postgres, mysql, mariadb/ })
    })
    await withEnv(sqliteEnv('x.db', { DB_POOL_SIZE: '5px' }), async () => {
      await rejectsWith(plug.getDialect(), 'E_CONFIG', { field: 'DB_POOL_SIZE' })
    })
    await withEnv(sqliteEnv('x.db', { DB_SCHEMA_STRATEGY: 'updte' }), async () => {
      await rejectsWith(plug.getDialect(), 'E_CONFIG', { message: /DB_SCHEMA_STRATEGY/ })
    })
    // A failed open is not cached: fixing the environment is enough.
    await withEnv(sqliteEnv(), async () => assert.equal((await plug.getDialect()).dialectType, 'sqlite'))
  })

  it('the profile key beats the plain key', async () => {
    await withEnv({ MOSTA_ENV: 'TEST', TEST_DB_DIALECT: 'sqlite', DB_DIALECT: 'oracle', TEST_SGBD_URI: join(dir, 'test.db'), SGBD_URI: join(dir, 'plain.db') }, async () => {
      const d = await plug.getDialect()
      assert.equal(d.dialectType, 'sqlite')
      assert.ok(existsSync(join(dir, 'test.db')))
      assert.ok(!existsSync(join(dir, 'plain.db')))
    })
  })

  it('setDialect during an open wins over the dialect being opened', async () => {
    await withEnv(sqliteEnv(), async () => {
      const pending = plug.getDialect()
      const double = { marker: 'double' }
      plug.setDialect(double)
      assert.equal(await plug.getDialect(), double)
      await pending
      assert.equal(await plug.getDialect(), double, 'the late open does not replace it')
    })
  })

  it('getDialect inside a transaction does not wait for schema initialisation', async () => {
    await withEnv(sqliteEnv(), async () => {
      plug.registerSchema(Note)
      const d = await plug.getDialect()
      plug.registerSchema(Audit)
      const inside = await d.$transaction(async (tx) => {
        assert.equal(await plug.getDialect(), d)
        return tx.count(Note, {})
      })
      assert.equal(inside, 0)
      assert.deepEqual(await (await plug.getDialect()).find(Audit, {}), [], 'initialised by the next call outside')
    })
  })

  it('a SQLite URI-looking path is a file name, as in the reference', async () => {
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const d = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: 'file:x.db?mode=memory' })
      await d.executeRun('CREATE TABLE t (a INTEGER)')
      await d.disconnect()
    } finally {
      process.chdir(cwd)
    }
    assert.ok(existsSync(join(dir, 'file:x.db?mode=memory')))
  })

  it('setDialect injects any object; resetDialect forgets it', async () => {
    const double = { find: async () => [{ id: 'fake' }] }
    plug.setDialect(double)
    assert.equal(await plug.getDialect(), double)
    assert.deepEqual(await (await plug.getDialect()).find(Note, {}), [{ id: 'fake' }])
    plug.resetDialect()
    await withEnv(sqliteEnv(), async () => assert.notEqual(await plug.getDialect(), double))
  })

  it('disconnect closes the pool and the next getDialect re-reads the environment', async () => {
    plug.registerSchema(Note)
    await withEnv(sqliteEnv('first.db'), async () => {
      const first = await plug.getDialect()
      await first.create(Note, { text: 'one' })
      await plug.disconnect()
      await rejectsWith(first.find(Note, {}), 'E_CLOSED')
      assert.equal(await first.testConnection(), false)
      process.env.SGBD_URI = join(dir, 'second.db')
      const second = await plug.getDialect()
      assert.notEqual(second, first)
      assert.equal(await second.count(Note, {}), 0, 'a fresh database from the new SGBD_URI')
    })
  })

  it('schemas registered after getDialect are initialised on the next call', async () => {
    await withEnv(sqliteEnv(), async () => {
      plug.registerSchema(Note)
      const d = await plug.getDialect()
      plug.registerSchema(Audit)
      await rejectsWith(d.find(Audit, {}), 'E_SCHEMA')
      assert.equal(await plug.getDialect(), d)
      assert.deepEqual(await d.find(Audit, {}), [])
      const a = await d.create(Audit, { action: 'x' })
      assert.ok(a.createdAt)
    })
  })

  describe('system dialect', () => {
    it('falls back to the business dialect until bootstrapped, and bootstrap without config aliases it', async () => {
      await withEnv(sqliteEnv(), async () => {
        const business = await plug.getDialect()
        assert.equal(await plug.getSystemDialect(), business)
        assert.equal(await plug.bootstrapSystemDialect(), business)
        assert.equal(await plug.getSystemDialect(), business)
      })
    })

    it('with MOSTA_SYSTEM_* it is isolated, creates its tables, survives a business disconnect, and bootstrap is idempotent', async () => {
      plug.registerSchema(Audit)
      await withEnv(sqliteEnv('biz.db', { MOSTA_SYSTEM_DIALECT: 'sqlite', MOSTA_SYSTEM_URI: join(dir, 'system.db'), DB_SCHEMA_STRATEGY: 'none' }), async () => {
        const business = await plug.getDialect()
        const sys = await plug.bootstrapSystemDialect()
        assert.notEqual(sys, business)
        assert.equal(await plug.bootstrapSystemDialect(), sys)
        assert.equal(await plug.getSystemDialect(), sys)
        await sys.create(Audit, { action: 'login' }) // strategy defaults to update: the table exists
        await rejectsWith(business.find(Audit, {}), 'E_SCHEMA')
        await plug.disconnect()
        assert.equal((await sys.find(Audit, {})).length, 1, 'still open after the business disconnect')
        plug.resetSystemDialect()
        const again = await plug.getSystemDialect()
        assert.notEqual(again, sys, 'reset then get falls back to the business dialect')
        assert.equal(again, await plug.getDialect())
        assert.equal(await sys.count(Audit, {}), 1, 'reset does not close the physical connection')
        await sys.disconnect()
      })
    })

    it('setSystemDialect injects a double', async () => {
      const double = { marker: 1 }
      plug.setSystemDialect(double)
      assert.equal(await plug.getSystemDialect(), double)
      assert.equal(await plug.bootstrapSystemDialect(), double)
    })

    it('MOSTA_SYSTEM_SCHEMA_STRATEGY is validated', async () => {
      await withEnv({ MOSTA_SYSTEM_DIALECT: 'sqlite', MOSTA_SYSTEM_URI: join(dir, 's.db'), MOSTA_SYSTEM_SCHEMA_STRATEGY: 'nope' }, async () => {
        await rejectsWith(plug.bootstrapSystemDialect(), 'E_CONFIG', { message: /MOSTA_SYSTEM_SCHEMA_STRATEGY/ })
      })
    })
  })

  it('openIsolatedDialect gives independent connections and validates its options', async () => {
    const a = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: ':memory:', schemaStrategy: 'create' }, [{ name: 'K', collection: 'ks' }])
    const b = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: ':memory:', schemaStrategy: 'create' }, [{ name: 'K', collection: 'ks' }])
    const K = { name: 'K', collection: 'ks', fields: {} }
    await a.create(K, {})
    assert.equal(await a.count(K, {}), 1)
    assert.equal(await b.count(K, {}), 0)
    assert.equal(plug.hasSchema('K'), false, 'isolated schemas stay out of the registry')
    await rejectsWith(plug.openIsolatedDialect({ uri: ':memory:' }), 'E_CONFIG', { field: 'dialect' })
    await rejectsWith(plug.openIsolatedDialect({ dialect: 'sqlite', uri: ':memory:', poolSize: -1 }), 'E_CONFIG', { field: 'poolSize' })
    await a.disconnect()
    await b.disconnect()
  })

  it('a relative SQLite path is resolved against the working directory and its folders are created', async () => {
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const d = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: join('deep', 'er', 'x.db') })
      assert.equal(await d.testConnection(), true)
      await d.disconnect()
    } finally {
      process.chdir(cwd)
    }
    assert.ok(existsSync(join(dir, 'deep', 'er', 'x.db')))
  })

  it('create-drop drops the schema tables on disconnect', async () => {
    const file = join(dir, 'cd.db')
    const d = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: file, schemaStrategy: 'create-drop' }, [Note])
    await d.create(Note, { text: 'x' })
    await d.disconnect()
    const check = await plug.openIsolatedDialect({ dialect: 'sqlite', uri: file })
    assert.deepEqual(await check.executeQuery("SELECT name FROM sqlite_master WHERE type = 'table'"), [])
    await check.disconnect()
  })

  // Rows are built by generated functions (lib/dialect.js, lib/records.js), with loops where
  // a process forbids generating code.
  it('rows read the same where generating code is not allowed', () => {
    const script = `const p = require(${JSON.stringify(join(process.cwd(), 'index.js'))});
      const Tag = { name: 'Tag', collection: 'tags', fields: { label: { type: 'string' } }, relations: {} }
      const Post = { name: 'Post', collection: 'posts', timestamps: true, fields: { title: { type: 'string' }, on: { type: 'boolean' } },
        relations: { tags: { target: 'Tag', type: 'many-to-many', through: 'post_tags' } } }
      ;(async () => {
        const d = await p.openIsolatedDialect({ dialect: 'sqlite', uri: ${JSON.stringify(join(dir, 'nocodegen.db'))}, schemaStrategy: 'create' }, [Tag, Post])
        const made = await d.create(Post, { title: 't', on: 1 })
        const again = await d.create(Post, { title: 'u', on: false })
        const read = await d.findById(Post, made.id)
        console.log(JSON.stringify({ made, read, shared: made.tags === again.tags }))
        await d.disconnect()
      })()`
    for (const flags of [[], ['--disallow-code-generation-from-strings']]) {
      const r = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' })
      assert.equal(r.status, 0, r.stderr)
      const { made, read, shared } = JSON.parse(r.stdout)
      assert.deepEqual(Object.keys(made), ['id', 'title', 'on', 'createdAt', 'updatedAt', 'tags'], flags.join())
      assert.deepEqual([made.title, made.on, made.tags], ['t', true, []], flags.join())
      assert.deepEqual(read, made, flags.join())
      assert.equal(shared, false, 'each row has its own list')
    }
  })

  it('DB_SHOW_SQL logs each statement to stderr', () => {
    const script = `const p = require(${JSON.stringify(join(process.cwd(), 'index.js'))});
      (async () => { const d = await p.getDialect(); await d.executeQuery('SELECT 1 AS one'); await p.disconnect() })()`
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...sqliteEnv('log.db'), DB_SHOW_SQL: 'true' }, encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /\[DAL:Sqlite\] SELECT 1 AS one/)
    const quiet = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...sqliteEnv('log2.db') }, encoding: 'utf8' })
    assert.doesNotMatch(quiet.stderr, /SELECT 1/)
  })
})
