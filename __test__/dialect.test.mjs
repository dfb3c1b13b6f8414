// The behavioural suite of every IDialect method, run once per backend on a fresh database.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import plug from '../index.js'
import { forEachBackend, holdTransaction, rejectsWith } from './helpers.mjs'
import { Category, Tag, Manual, Product, Dog, Cat, ALL } from './fixtures.mjs'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Dates come back as ISO strings on SQLite and as Date objects on PostgreSQL/MySQL. */
const asTime = (v) => (v instanceof Date ? v.getTime() : Date.parse(v))
const ids = (rows) => rows.map((r) => r.id).sort()
const names = (rows) => rows.map((r) => r.name)

await forEachBackend('dialect', (b) => {
  let d
  let config
  const sqlite = b.name === 'sqlite'
  const ph = (i) => (b.name === 'postgres' ? `$${i}` : '?')

  before(async () => {
    config = await b.fresh('dialect')
    d = await plug.openIsolatedDialect({ ...config, schemaStrategy: 'create' }, ALL)
  })
  after(async () => d && d.disconnect())

  async function reset() {
    for (const s of [Product, Category, Tag, Manual, Dog]) await d.deleteMany(s, {})
    await d.executeRun(`DELETE FROM ${b.name === 'mariadb' ? '`products`' : '"products"'}`)
  }

  async function seed() {
    await reset()
    const tools = await d.create(Category, { name: 'tools', rank: 1 })
    const toys = await d.create(Category, { name: 'toys', rank: 2 })
    const red = await d.create(Tag, { label: 'red' })
    const blue = await d.create(Tag, { label: 'blue' })
    const rows = [
      { name: 'Hammer', sku: 'H1', price: 10, stock: 5, category: tools.id, tags: ['steel'], labels: [red.id] },
      { name: 'hatchet', sku: 'H2', price: 25.5, category: tools.id, active: false, labels: [red.id, blue.id] },
      { name: 'Yoyo', sku: 'Y1', price: 3, stock: 100, category: toys.id, meta: { color: 'red' } },
      { name: 'Kite', price: 12, category: toys.id },
      { name: 'Widget', sku: 'W1', price: 7 },
    ]
    const created = []
    for (const r of rows) created.push(await d.create(Product, r))
    return { tools, toys, red, blue, products: created }
  }

  describe('create and read', () => {
    it('create fills ids, defaults, timestamps and to-many keys, and reads back every type', async () => {
      await reset()
      const p = await d.create(Product, {
        name: 'Drill',
        price: 99.5,
        tags: ['a', 'b'],
        meta: { volts: 18, kit: [1, 2] },
        releasedAt: '2024-01-02T03:04:05.000Z',
        body: 'long text',
      })
      assert.match(p.id, UUID_V4)
      assert.equal(Object.keys(p)[0], 'id')
      assert.equal(p.name, 'Drill')
      assert.equal(p.price, 99.5)
      assert.equal(p.stock, 0)
      assert.equal(p.active, true)
      assert.deepEqual(p.tags, ['a', 'b'])
      assert.deepEqual(p.meta, { volts: 18, kit: [1, 2] })
      assert.equal(asTime(p.releasedAt), Date.parse('2024-01-02T03:04:05.000Z'))
      if (!sqlite) assert.ok(p.releasedAt instanceof Date, 'dates are Date objects on server backends')
      else assert.equal(p.releasedAt, '2024-01-02T03:04:05.000Z')
      assert.equal(p.body, 'long text')
      assert.deepEqual(p.labels, [])
      assert.equal(p.deletedAt, null)
      assert.ok(Math.abs(asTime(p.createdAt) - Date.now()) < 60_000, 'createdAt is now')
      assert.equal(asTime(p.createdAt), asTime(p.updatedAt))
      const again = await d.findById(Product, p.id)
      assert.deepEqual(again, p)
    })

    it('keeps a caller-supplied id and stores booleans as booleans', async () => {
      const p = await d.create(Product, { id: 'custom-1', name: 'X', price: 1, active: false })
      assert.equal(p.id, 'custom-1')
      assert.equal(p.active, false)
      assert.equal((await d.findById(Product, 'custom-1')).active, false)
    })

    // On SQLite, create data that is a plain object travels as call arguments, values JSON
    // would change fall back to JSON text, and anything else (here: a class instance) goes
    // as JSON (lib/records.js): every way must store and answer the same row.
    it('create data reads the same whether it travels as values or as JSON', async () => {
      await reset()
      class Rec {
        constructor(o) {
          Object.assign(this, o)
        }
      }
      const cases = [
        { name: 'ascii', price: 1, active: false },
        { name: 'é ☃ 𝄞 "q" \\ \u0001', price: -0, stock: -7, sku: null },
        { name: '', price: 0.1 + 0.2, stock: 2 ** 53 - 1 },
        { price: 2 ** 53, stock: 1e21, name: 'big, keys in another order' },
        { name: 'not finite', price: 5, stock: NaN, body: Infinity },
        { name: 'undefined', price: 5, stock: undefined },
        { name: 'date', price: 5, releasedAt: new Date('2024-01-02T03:04:05.000Z') },
        { name: 'nested', price: 5, meta: { a: [1, { b: null }] }, tags: ['x'] },
        { name: 'coerced', price: '12.5', body: 42 },
        // The same keys with values the database changes (1 stored for a boolean reads as
        // true): the created row must show what was stored, not what was sent.
        { name: 'numeric boolean', price: 5, active: 1 },
        { name: 'numeric boolean', price: 5, active: 0 },
        { name: 'numeric boolean', price: 5, active: true },
        Object.assign(Object.create(null), { name: 'null prototype', price: 3 }),
      ]
      const strip = ({ id, createdAt, updatedAt, ...rest }) => rest
      for (const data of cases) {
        const label = JSON.stringify(data)
        const plain = await d.create(Product, data)
        const viaJson = await d.create(Product, new Rec(data))
        assert.deepEqual(Object.keys(plain), Object.keys(viaJson), label)
        assert.deepEqual(strip(plain), strip(viaJson), label)
        assert.deepEqual(await d.findById(Product, plain.id), plain, label)
      }
      const [a, b] = [await d.create(Product, { name: 'a', price: 1 }), await d.create(Product, { name: 'b', price: 1 })]
      assert.notEqual(a.labels, b.labels, 'each row has its own to-many list')
      assert.equal((await d.findOne(Product, { name: 'undefined' })).stock, 0, 'an undefined value is left out: the default applies')
      assert.equal((await d.findOne(Product, { name: 'not finite' })).stock, null, 'NaN is null, as in JSON')
      // What JSON cannot carry fails the same way both ways, and writes nothing.
      for (const bad of [{ name: 'lone \ud800', price: 1 }, { name: 'bigint', price: 1n }]) {
        const before = await d.count(Product, {})
        const plain = await d.create(Product, bad).then(() => 'written', (e) => e.code)
        const viaJson = await d.create(Product, new Rec(bad)).then(() => 'written', (e) => e.code)
        assert.equal(plain, 'E_INVALID_ARGUMENT', bad.name)
        assert.equal(viaJson, plain, bad.name)
        assert.equal(await d.count(Product, {}), before)
      }
    })

    it('create takes data of many key lists and of many keys', async () => {
      // Key lists are numbered per dialect up to a limit, then go as JSON; so does data of
      // more keys than a call carries as values.
      await reset()
      const keys = ['sku', 'stock', 'body', 'active', 'name', 'price']
      const orders = []
      const permute = (done, rest) => (rest.length === 0 ? orders.push(done) : rest.forEach((k, i) => permute([...done, k], rest.filter((_, j) => j !== i))))
      permute([], keys)
      const values = { stock: 4, body: 'b', active: false, name: 'n', price: 2.5 }
      for (const [i, order] of orders.slice(0, 300).entries()) {
        const data = Object.fromEntries(order.map((k) => [k, k === 'sku' ? `K${i}` : values[k]]))
        const made = await d.create(Product, data)
        assert.deepEqual(made, await d.findById(Product, made.id))
        assert.equal(made.sku, `K${i}`)
        assert.equal(made.price, 2.5)
      }
      assert.equal(await d.count(Product, {}), 300)
      const Wide = { name: 'Wide', collection: 'wide_rows', fields: Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`f${i}`, { type: 'number' }])), relations: {}, indexes: [] }
      await d.initSchema([...ALL, Wide])
      for (const n of [70, 60]) {
        const data = Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, i * 1.5]))
        const made = await d.create(Wide, data)
        assert.equal(made.f59, 59 * 1.5)
        assert.equal(made.f69, n === 70 ? 69 * 1.5 : null)
        assert.deepEqual(made, await d.findById(Wide, made.id))
      }
      await d.dropSchema([Wide])
      await d.initSchema(ALL)
    })

    it('findById returns null for a missing or empty id', async () => {
      assert.equal(await d.findById(Product, 'nope'), null)
      assert.equal(await d.findById(Product, null), null)
      assert.equal(await d.findById(Product, ''), null)
    })

    // On SQLite, a string id without options travels as itself rather than as JSON
    // (lib/dialect.js): both ways must answer the same.
    it('findById answers the same for a string id with and without options', async () => {
      await reset()
      const stored = ['plain-1', 'é ☃ 𝄞', 'has \uFFFD in it', '"quoted" \\ and \u0001']
      for (const id of stored) await d.create(Product, { id, name: id, price: 1 })
      for (const id of [...stored, 'missing', '', 'lone \ud800']) {
        const direct = await d.findById(Product, id).then((r) => r, (e) => e.code)
        const viaJson = await d.findById(Product, id, {}).then((r) => r, (e) => e.code)
        assert.deepEqual(direct, viaJson, JSON.stringify(id))
        if (stored.includes(id)) assert.equal(direct.name, id)
      }
      await d.$transaction(async (tx) => {
        const made = await tx.create(Product, { name: 'in a transaction', price: 1 })
        assert.deepEqual(await tx.findById(Product, made.id), made)
      })
    })

    it('findOne honours its filter and sort', async () => {
      await seed()
      const first = await d.findOne(Product, { price: { $gt: 5 } }, { sort: { price: 'desc' } })
      assert.equal(first.name, 'hatchet')
      assert.equal(await d.findOne(Product, { name: 'none' }), null)
    })

    it('date fields held in text columns of a table made elsewhere read as dates', async () => {
      // Date-time columns cross as numbers named on the answer's date line; a date field in
      // a text column crosses as text, which must still become a Date where dates do. Here
      // `at` is text and the timestamps are date-time columns (text on SQLite).
      const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
      const stamp = { sqlite: 'TEXT', postgres: 'TIMESTAMPTZ', mariadb: 'DATETIME(3)' }[b.name]
      await d.executeRun(`CREATE TABLE ${q('legacy_events')} (${q('id')} VARCHAR(36) PRIMARY KEY, ${q('title')} VARCHAR(40), ${q('at')} VARCHAR(40), ${q('createdAt')} ${stamp}, ${q('updatedAt')} ${stamp})`)
      const LegacyEvent = { name: 'LegacyEvent', collection: 'legacy_events', timestamps: true, fields: { title: { type: 'string' }, at: { type: 'date' } }, relations: {}, indexes: [] }
      const iso = (i) => new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString()
      for (let i = 0; i < 3; i++) {
        await d.executeRun(`INSERT INTO ${q('legacy_events')} VALUES (${[1, 2, 3, 4, 5].map(ph).join(', ')})`, [`e${i}`, `event ${i}`, iso(i), new Date(iso(i)), new Date(iso(i))])
      }
      const isDate = (v, i) => (sqlite ? v === iso(i) : v instanceof Date && v.getTime() === Date.parse(iso(i)))
      const all = await d.find(LegacyEvent, {}, { sort: { title: 1 } })
      assert.equal(all.length, 3)
      all.forEach((r, i) => assert.ok(isDate(r.at, i) && isDate(r.createdAt, i) && isDate(r.updatedAt, i), `find, row ${i}: ${JSON.stringify(r)}`))
      assert.ok(isDate((await d.findById(LegacyEvent, 'e1')).at, 1), 'findById')
      assert.ok(isDate((await d.findOne(LegacyEvent, { title: 'event 2' })).at, 2), 'findOne')
      await d.executeRun(`DROP TABLE ${q('legacy_events')}`)
    })
  })

  describe('filters', () => {
    before(seed)

    const cases = [
      ['equality', { name: 'Yoyo' }, ['Yoyo']],
      ['$eq', { price: { $eq: 12 } }, ['Kite']],
      ['$ne never matches NULL', { sku: { $ne: 'H1' } }, ['hatchet', 'Widget', 'Yoyo']],
      ['$gt/$lte', { price: { $gt: 7, $lte: 12 } }, ['Hammer', 'Kite']],
      ['$gte/$lt', { price: { $gte: 7, $lt: 10 } }, ['Widget']],
      ['$in', { sku: { $in: ['H1', 'Y1', 'zz'] } }, ['Hammer', 'Yoyo']],
      ['$in [] matches nothing', { sku: { $in: [] } }, []],
      ['$nin', { sku: { $nin: ['H1', 'H2'] } }, ['Widget', 'Yoyo']],
      ['$nin [] adds nothing', { price: { $nin: [] } }, ['Hammer', 'hatchet', 'Kite', 'Widget', 'Yoyo']],
      ['null means IS NULL', { sku: null }, ['Kite']],
      ['$eq null', { sku: { $eq: null } }, ['Kite']],
      ['$ne null', { meta: { $ne: null } }, ['Yoyo']],
      ['$exists false', { sku: { $exists: false } }, ['Kite']],
      ['$exists true', { meta: { $exists: true } }, ['Yoyo']],
      ['$regex anchored', { name: { $regex: '^Ha' } }, ['Hammer', 'hatchet'].filter((n) => b.name !== 'postgres' || n === 'Hammer')],
      ['$regex with i flag', { name: { $regex: '^ha', $regexFlags: 'i' } }, ['Hammer', 'hatchet']],
      ['$regex dot and end anchor', { name: { $regex: 'K.te$' } }, ['Kite']],
      ['RegExp object', { name: /^yo/i }, ['Yoyo']],
      ['$or', { $or: [{ name: 'Kite' }, { price: { $lt: 4 } }] }, ['Kite', 'Yoyo']],
      ['$and', { $and: [{ price: { $gt: 5 } }, { price: { $lt: 11 } }] }, ['Hammer', 'Widget']],
      ['boolean', { active: false }, ['hatchet']],
      ['relation name means its column', { category: { $ne: null }, price: { $lt: 11 } }, ['Hammer', 'Yoyo']],
      ['plain object without operators is ignored', { meta: { color: 'red' }, price: { $lt: 4 } }, ['Yoyo']],
    ]
    for (const [title, filter, expected] of cases) {
      it(title, async () => {
        const rows = await d.find(Product, filter)
        assert.deepEqual(names(rows).sort(), [...expected].sort())
      })
    }

    it('malformed filters are E_INVALID_FILTER naming the field', async () => {
      await rejectsWith(d.find(Product, { price: { $bogus: 1 } }), 'E_INVALID_FILTER', { field: 'price' })
      await rejectsWith(d.find(Product, { price: { $in: 5 } }), 'E_INVALID_FILTER', { field: 'price' })
      await rejectsWith(d.find(Product, { $or: { name: 'x' } }), 'E_INVALID_FILTER')
      await rejectsWith(d.find(Product, { $where: 'x' }), 'E_INVALID_FILTER')
      await rejectsWith(d.find(Product, { name: { $regex: 5 } }), 'E_INVALID_FILTER', { field: 'name' })
      await rejectsWith(d.find(Product, { labels: 'x' }), 'E_INVALID_FILTER', { field: 'labels' })
      await rejectsWith(d.count(Product, { price: { $gt: {} } }), 'E_INVALID_FILTER')
    })

    it('identifiers cannot change the statement', async () => {
      const before = await d.count(Product, {})
      const evil = b.name === 'mariadb' ? 'name` = `name` OR 1=1 -- ' : 'name" = "name" OR 1=1 -- '
      await rejectsWith(d.find(Product, { [evil]: 'x' }), 'E_UNKNOWN_COLUMN')
      await rejectsWith(d.find(Product, {}, { sort: { [evil]: 1 } }), 'E_UNKNOWN_COLUMN')
      assert.equal(await d.count(Product, {}), before)
      const rows = await d.find(Product, { name: "x' OR '1'='1" })
      assert.equal(rows.length, 0)
    })
  })

  describe('query options', () => {
    before(seed)

    it('sorts with 1/-1 and asc/desc', async () => {
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: 1 } })), ['Yoyo', 'Widget', 'Hammer', 'Kite', 'hatchet'])
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: -1 } })), ['hatchet', 'Kite', 'Hammer', 'Widget', 'Yoyo'])
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: 'desc' } })), ['hatchet', 'Kite', 'Hammer', 'Widget', 'Yoyo'])
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: 'asc' } })), ['Yoyo', 'Widget', 'Hammer', 'Kite', 'hatchet'])
    })

    it('limit, skip, and skip without limit', async () => {
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: 1 }, limit: 2 })), ['Yoyo', 'Widget'])
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: 1 }, limit: 2, skip: 1 })), ['Widget', 'Hammer'])
      assert.deepEqual(names(await d.find(Product, {}, { sort: { price: 1 }, skip: 3 })), ['Kite', 'hatchet'])
      assert.equal((await d.find(Product, {}, { limit: 0 })).length, 5, 'limit 0 means no limit')
    })

    it('select returns id, the fields and to-many keys; exclude removes columns', async () => {
      const [row] = await d.find(Product, { name: 'Yoyo' }, { select: ['name', 'category'] })
      assert.deepEqual(Object.keys(row).sort(), ['category', 'id', 'labels', 'name'])
      const [ex] = await d.find(Product, { name: 'Yoyo' }, { exclude: ['meta', 'body', 'category', 'manual'] })
      assert.ok(!('meta' in ex) && !('body' in ex) && !('category' in ex) && !('manualId' in ex))
      assert.equal(ex.price, 3)
    })

    it('bad options are E_INVALID_FILTER', async () => {
      await rejectsWith(d.find(Product, {}, { limit: -1 }), 'E_INVALID_FILTER', { field: 'limit' })
      await rejectsWith(d.find(Product, {}, { limit: '5; DROP TABLE products' }), 'E_INVALID_FILTER', { field: 'limit' })
      await rejectsWith(d.find(Product, {}, { sort: { price: 'sideways' } }), 'E_INVALID_FILTER', { field: 'price' })
    })
  })

  describe('writes', () => {
    it('create returns the row exactly as findById reads it, whatever the table holds', async () => {
      const Gadget = {
        name: 'Gadget',
        collection: 'gadgets',
        timestamps: true,
        fields: {
          name: { type: 'string' },
          score: { type: 'number', default: 1 },
          on: { type: 'boolean' },
          at: { type: 'date' },
          meta: { type: 'json' },
          tags: { type: 'array' },
        },
        relations: { category: { target: 'Category', type: 'many-to-one' }, labels: { target: 'Tag', type: 'many-to-many', through: 'gadget_tags' } },
        indexes: [],
      }
      await d.initSchema([...ALL, Gadget])
      const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
      const tag = await d.create(Tag, { label: 'g' })
      const same = async (data, why) => {
        const created = await d.create(Gadget, data)
        assert.deepStrictEqual(created, await d.findById(Gadget, created.id), why)
        return created
      }
      await same({ name: 'full', score: 2.5, on: false, at: '2024-02-03T04:05:06.000Z', meta: { a: [1, { b: null }] }, tags: ['x'], labels: [tag.id] }, 'every type')
      await same({}, 'defaults and NULLs')
      await same({ name: 42, score: '7' }, 'values the column type converts')
      await same({ score: 2 ** 60 }, 'a number beyond double precision')
      await same({ extra: 3 }, 'an undeclared key (auto-ALTER)')
      if (sqlite) {
        // SQLite's type affinity turns numeric text into a number in an INTEGER column.
        await d.executeRun('ALTER TABLE "gadgets" ADD "num" INTEGER')
        assert.equal((await same({ num: '12' }, 'numeric text into an INTEGER column')).num, 12)
      }
      // Columns the schema does not know, added behind the dialect's back.
      await d.executeRun(`ALTER TABLE ${q('gadgets')} ADD ${q('plain')} VARCHAR(20)`)
      assert.equal((await same({ name: 'with null' }, 'a column added later')).plain, null)
      await d.executeRun(`ALTER TABLE ${q('gadgets')} ADD ${q('note')} VARCHAR(20) DEFAULT 'n/a'`)
      assert.equal((await same({ name: 'with default' }, 'a column with a DEFAULT')).note, 'n/a')
      if (sqlite) {
        await d.executeRun(`CREATE TRIGGER gadget_stamp AFTER INSERT ON gadgets BEGIN UPDATE gadgets SET name = 'stamped' WHERE id = NEW.id; END`)
        assert.equal((await same({ name: 'raw' }, 'a trigger rewrites the row')).name, 'stamped')
      }
    })

    it('inside one transaction, create still returns the row as stored after the schema changes', async () => {
      const Widget = { name: 'Widget', collection: 'widgets', timestamps: true, fields: { name: { type: 'string' } }, relations: {}, indexes: [] }
      await d.initSchema([...ALL, Widget])
      const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
      await d.$transaction(async (tx) => {
        const same = async (data, why) => {
          const created = await tx.create(Widget, data)
          assert.deepStrictEqual(created, await tx.findById(Widget, created.id), why)
          return created
        }
        await same({ name: 'first' }, 'before any change')
        await same({ name: 'second' }, 'the same statement again')
        await tx.executeRun(`ALTER TABLE ${q('widgets')} ADD ${q('note')} VARCHAR(20) DEFAULT 'n/a'`)
        assert.equal((await same({ name: 'after' }, 'a column with a DEFAULT, added in the transaction')).note, 'n/a')
        if (b.name === 'mariadb') return // MySQL DDL commits at once: no savepoint can undo it
        // A column added in a nested transaction that rolls back is gone again.
        await assert.rejects(
          tx.$transaction(async (inner) => {
            await inner.executeRun(`ALTER TABLE ${q('widgets')} ADD ${q('extra')} VARCHAR(20) DEFAULT 'gone'`)
            assert.equal((await same({ name: 'inner' }, 'a column added in a savepoint')).extra, 'gone')
            throw new Error('undo')
          }),
          /undo/,
        )
        assert.equal('extra' in (await same({ name: 'after undo' }, 'the savepoint rolled back')), false)
        if (sqlite) {
          await tx.executeRun(`CREATE TRIGGER widget_stamp AFTER INSERT ON widgets BEGIN UPDATE widgets SET name = 'stamped' WHERE id = NEW.id; END`)
          assert.equal((await same({ name: 'raw' }, 'a trigger added in the transaction')).name, 'stamped')
        }
      })
    })

    it('update changes fields, refreshes updatedAt and returns the row; missing rows give null', async () => {
      const { products } = await seed()
      const p = products[0]
      await new Promise((r) => setTimeout(r, sqlite || b.name === 'postgres' ? 5 : 1100))
      const u = await d.update(Product, p.id, { price: 11, meta: { v: 2 }, active: false })
      assert.equal(u.price, 11)
      assert.deepEqual(u.meta, { v: 2 })
      assert.equal(u.active, false)
      assert.equal(u.name, 'Hammer')
      assert.ok(asTime(u.updatedAt) > asTime(p.updatedAt), 'updatedAt moved')
      assert.equal(asTime(u.createdAt), asTime(p.createdAt))
      assert.equal(await d.update(Product, 'missing', { price: 1 }), null)
    })

    it('updateMany returns the number of rows matched', async () => {
      await seed()
      assert.equal(await d.updateMany(Product, { price: { $lt: 11 } }, { stock: 42 }), 3)
      assert.equal(await d.count(Product, { stock: 42 }), 3)
    })

    it('soft delete hides rows unless includeDeleted; delete twice is true again', async () => {
      const { products } = await seed()
      const kite = products[3]
      assert.equal(await d.delete(Product, kite.id), true)
      assert.equal(await d.findById(Product, kite.id), null)
      const hidden = await d.findById(Product, kite.id, { includeDeleted: true })
      assert.equal(hidden.name, 'Kite')
      assert.ok(hidden.deletedAt)
      assert.equal(await d.count(Product, {}), 4)
      assert.equal(await d.count(Product, {}, { includeDeleted: true }), 5)
      assert.equal(await d.delete(Product, kite.id), true)
      assert.equal(await d.update(Product, kite.id, { price: 1 }), null, 'a soft-deleted row is not updated')
      assert.equal(await d.deleteMany(Product, { price: { $lt: 11 } }), 3)
      assert.equal(await d.deleteMany(Product, { price: { $lt: 11 } }), 0)
    })

    it('hard delete reports whether a row went, and deleteMany counts', async () => {
      await seed()
      const c = await d.create(Category, { name: 'spare' })
      assert.equal(await d.delete(Category, c.id), true)
      assert.equal(await d.delete(Category, c.id), false)
      await d.create(Category, { name: 'a1' })
      await d.create(Category, { name: 'a2' })
      assert.equal(await d.deleteMany(Category, { name: { $regex: '^a' } }), 2)
    })

    it('upsert updates the match or creates without merging the filter', async () => {
      await seed()
      const u = await d.upsert(Product, { sku: 'Y1' }, { stock: 1 })
      assert.equal(u.name, 'Yoyo')
      assert.equal(u.stock, 1)
      const c = await d.upsert(Category, { name: 'new' }, { name: 'created', rank: 9 })
      assert.equal(c.name, 'created')
      assert.equal(c.rank, 9)
    })

    it('increment adds to numbers and creates a missing id', async () => {
      const { products } = await seed()
      const h = await d.increment(Product, products[0].id, 'stock', 3)
      assert.equal(h.stock, 8)
      const k = await d.increment(Product, products[3].id, 'stock', -2)
      assert.equal(k.stock, -2)
      const made = await d.increment(Category, 'cat-x', 'rank', 5).catch((e) => e)
      assert.equal(made.code, 'E_NOT_NULL', 'a created row still needs its required fields')
      await rejectsWith(d.increment(Product, products[0].id, 'stock', 'x'), 'E_INVALID_ARGUMENT')
    })

    it('addToSet and pull on an array field and on a many-to-many relation', async () => {
      const { products, blue } = await seed()
      const h = products[0]
      assert.deepEqual((await d.addToSet(Product, h.id, 'tags', 'wood')).tags, ['steel', 'wood'])
      assert.deepEqual((await d.addToSet(Product, h.id, 'tags', 'wood')).tags, ['steel', 'wood'])
      assert.deepEqual((await d.pull(Product, h.id, 'tags', 'steel')).tags, ['wood'])
      await d.addToSet(Product, h.id, 'labels', blue.id)
      await d.addToSet(Product, h.id, 'labels', blue.id)
      let full = await d.findByIdWithRelations(Product, h.id, ['labels'])
      assert.deepEqual(full.labels.map((l) => l.label).sort(), ['blue', 'red'])
      await d.pull(Product, h.id, 'labels', blue.id)
      full = await d.findByIdWithRelations(Product, h.id, ['labels'])
      assert.deepEqual(full.labels.map((l) => l.label), ['red'])
      assert.equal(await d.addToSet(Product, 'missing', 'tags', 'x'), null)
    })

    it('update rewrites a many-to-many list', async () => {
      const { products, red, blue } = await seed()
      await d.update(Product, products[1].id, { labels: [blue.id] })
      const p = await d.findByIdWithRelations(Product, products[1].id, ['labels'])
      assert.deepEqual(p.labels.map((l) => l.id), [blue.id])
      await d.update(Product, products[1].id, { labels: `${red.id}, ${blue.id}` })
      const q = await d.findByIdWithRelations(Product, products[1].id, ['labels'])
      assert.deepEqual(q.labels.map((l) => l.id).sort(), [red.id, blue.id].sort())
    })
  })

  describe('aggregates', () => {
    before(seed)

    it('count, distinct', async () => {
      assert.equal(await d.count(Product, { price: { $gt: 5 } }), 4)
      assert.equal(typeof (await d.count(Product)), 'number')
      const cats = await d.distinct(Product, 'category', { price: { $lt: 100 } })
      assert.equal(cats.length, 3, 'two categories and NULL')
      assert.ok(cats.includes(null))
      assert.deepEqual((await d.distinct(Product, 'active')).sort(), [false, true])
    })

    it('aggregate $match/$group/$sort/$limit with numeric results on every backend', async () => {
      const rows = await d.aggregate(Product, [
        { $match: { category: { $ne: null } } },
        { $group: { _by: 'category', n: { $sum: 1 }, total: { $sum: '$price' }, c: { $count: true }, top: { $max: 'price' }, avg: { $avg: 'price' } } },
        { $sort: { total: -1 } },
        { $limit: 5 },
      ])
      assert.equal(rows.length, 2)
      const [tools, toys] = rows
      assert.equal(tools.n, 2)
      assert.equal(tools.c, 2)
      assert.equal(tools.total, 35.5)
      assert.equal(tools.top, 25.5)
      assert.equal(toys.n, 2)
      assert.equal(toys.avg, 7.5)
      const all = await d.aggregate(Product, [{ $group: { _by: null, count: { $count: true } } }])
      assert.deepEqual(all, [{ _group: null, count: 5 }])
      await rejectsWith(d.aggregate(Product, [{ $project: { a: 1 } }]), 'E_INVALID_FILTER')
    })

    it('dates keep their type in distinct, aggregate and raw SQL, both ways', async () => {
      const when = new Date('2024-05-06T07:08:09.000Z')
      await d.update(Product, (await d.findOne(Product, { name: 'Kite' })).id, { releasedAt: when.toISOString() })
      const isDate = (v) => (sqlite ? typeof v === 'string' : v instanceof Date)
      const released = (await d.distinct(Product, 'releasedAt')).filter((v) => v !== null)
      assert.equal(released.length, 1)
      assert.ok(isDate(released[0]), `distinct gives ${sqlite ? 'strings' : 'Dates'}`)
      assert.equal(asTime(released[0]), when.getTime())
      const [agg] = await d.aggregate(Product, [{ $match: { name: 'Kite' } }, { $group: { _by: null, first: { $min: 'releasedAt' }, n: { $count: true } } }])
      assert.ok(isDate(agg.first), 'aggregate $min of a date column')
      assert.equal(asTime(agg.first), when.getTime())
      assert.equal(agg.n, 1)
      const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
      const raw = await d.executeQuery(`SELECT ${q('name')}, ${q('releasedAt')} FROM ${q('products')} WHERE ${q('releasedAt')} = ${ph(1)}`, [when])
      assert.deepEqual(raw.map((r) => r.name), ['Kite'], 'a Date parameter matches the stored date')
      assert.ok(isDate(raw[0].releasedAt), 'executeQuery date-time columns')
      assert.equal(asTime(raw[0].releasedAt), when.getTime())
      assert.equal(typeof raw[0].name, 'string')
      await rejectsWith(d.executeQuery('SELECT 1', [new Date(NaN)]), 'E_INVALID_ARGUMENT', { field: 'params[0]' })
    })

    it('search matches string fields, case-insensitively for ASCII on SQLite', async () => {
      const rows = await d.search(Product, 'ha', ['name'])
      assert.deepEqual(names(rows).sort(), sqlite || b.name === 'mariadb' ? ['Hammer', 'hatchet'] : ['hatchet'])
      const all = await d.search(Product, 'o', undefined, { sort: { name: 1 } })
      assert.deepEqual(names(all), ['Yoyo'])
      const Numbers = { name: 'Numbers', collection: 'numbers', fields: { n: { type: 'number' } } }
      await rejectsWith(d.search(Numbers, 'x'), 'E_INVALID_ARGUMENT')
    })
  })

  describe('relations', () => {
    let data
    before(async () => {
      data = await seed()
    })

    it('many-to-one, one-to-many and many-to-many are populated on request', async () => {
      const rows = await d.findWithRelations(Product, { sku: { $in: ['H1', 'H2'] } }, ['category', 'labels'], { sort: { sku: 1 } })
      assert.deepEqual(rows[0].category, { id: data.tools.id, name: 'tools', rank: 1 })
      assert.deepEqual(rows[0].labels.map((l) => l.label), ['red'])
      assert.deepEqual(rows[1].labels.map((l) => l.label).sort(), ['blue', 'red'])
      const cat = await d.findByIdWithRelations(Category, data.toys.id, ['products'])
      assert.deepEqual(cat.products.map((p) => p.name).sort(), ['Kite', 'Yoyo'])
      assert.equal(await d.findByIdWithRelations(Category, 'missing', ['products']), null)
      const plain = await d.findById(Product, data.products[0].id)
      assert.equal(plain.category, data.tools.id, 'lazy relations stay ids')
    })

    it('eager one-to-one relations are populated by findById through their join column', async () => {
      const m = await d.create(Manual, { title: 'How to hammer' })
      const p = await d.create(Product, { name: 'Mallet', price: 1, manual: m.id })
      assert.equal(p.manualId, m.id)
      assert.deepEqual(p.manual, { id: m.id, title: 'How to hammer' })
      await rejectsWith(d.create(Product, { name: 'Mallet2', price: 1, manual: m.id }), 'E_UNIQUE', { field: 'manualId' })
    })

    it('relations of many rows are read together and match each row', async () => {
      const cats = []
      for (let i = 0; i < 3; i++) cats.push(await d.create(Category, { name: `shelf ${i}`, rank: 10 + i }))
      const tags = [await d.create(Tag, { label: 't0' }), await d.create(Tag, { label: 't1' })]
      const made = []
      for (let i = 0; i < 30; i++) {
        const labels = i % 3 === 0 ? [] : i % 3 === 1 ? [tags[1].id, tags[0].id] : [tags[0].id]
        made.push(await d.create(Product, { name: `Bulk ${i}`, sku: `B${i}`, price: i, category: cats[i % 3].id, labels }))
      }
      const rows = await d.findWithRelations(Product, { sku: { $in: made.map((p) => p.sku) } }, ['category', 'labels'], { sort: { price: 1 } })
      assert.equal(rows.length, 30)
      rows.forEach((r, i) => {
        assert.deepEqual(r.category, { id: cats[i % 3].id, name: `shelf ${i % 3}`, rank: 10 + (i % 3) })
        const want = i % 3 === 0 ? [] : i % 3 === 1 ? ['t0', 't1'] : ['t0']
        assert.deepEqual(r.labels.map((l) => l.label).sort(), want, `labels of row ${i}`)
      })
      const byCategory = await d.findWithRelations(Category, { id: { $in: cats.map((c) => c.id) } }, ['products'], { sort: { rank: 1 } })
      byCategory.forEach((c, k) => {
        assert.deepEqual(c.products.map((p) => p.name).sort(), made.filter((_, i) => i % 3 === k).map((p) => p.name).sort())
      })
      await d.deleteMany(Product, { sku: { $in: made.map((p) => p.sku) } })
    })

    it('populated many-to-one targets get their own eager relations', async () => {
      const Badge = { name: 'Badge', collection: 'badges', fields: { code: { type: 'string' } }, relations: {}, indexes: [] }
      const Owner = { name: 'Owner', collection: 'owners', fields: { name: { type: 'string' } }, relations: { badge: { target: 'Badge', type: 'one-to-one', joinColumn: 'badgeId', fetch: 'eager' } }, indexes: [] }
      const Pet = { name: 'Pet', collection: 'pets', fields: { name: { type: 'string' } }, relations: { owner: { target: 'Owner', type: 'many-to-one' } }, indexes: [] }
      await d.initSchema([Badge, Owner, Pet])
      const badge = await d.create(Badge, { code: 'B-1' })
      const ann = await d.create(Owner, { name: 'Ann', badge: badge.id })
      const bob = await d.create(Owner, { name: 'Bob' })
      for (const [name, owner] of [['Rex', ann], ['Tom', bob], ['Zaz', ann]]) await d.create(Pet, { name, owner: owner.id })
      await d.create(Pet, { name: 'Stray' })
      const pets = await d.findWithRelations(Pet, {}, ['owner'], { sort: { name: 1 } })
      assert.deepEqual(pets.map((p) => [p.name, p.owner?.name ?? p.owner]), [['Rex', 'Ann'], ['Stray', null], ['Tom', 'Bob'], ['Zaz', 'Ann']])
      assert.deepEqual(pets[0].owner.badge, { id: badge.id, code: 'B-1' })
      assert.deepEqual(pets[3].owner, pets[0].owner, 'the same owner for both of its pets')
      assert.equal(pets[2].owner.badge, undefined, 'no badge, nothing populated')
    })

    it('a one-to-many relation with a select still groups children under their parent', async () => {
      const Shelf = { name: 'Shelf', collection: 'shelves', fields: { label: { type: 'string' } }, relations: { books: { target: 'Book', type: 'one-to-many', mappedBy: 'shelf', select: ['title'] } }, indexes: [] }
      const Book = { name: 'Book', collection: 'books', fields: { title: { type: 'string' } }, relations: { shelf: { target: 'Shelf', type: 'many-to-one' } }, indexes: [] }
      await d.initSchema([Shelf, Book])
      const a = await d.create(Shelf, { label: 'a' })
      const b = await d.create(Shelf, { label: 'b' })
      for (const [title, shelf] of [['A1', a], ['B1', b], ['A2', a]]) await d.create(Book, { title, shelf: shelf.id })
      const shelves = await d.findWithRelations(Shelf, {}, ['books'], { sort: { label: 1 } })
      assert.deepEqual(
        shelves.map((s) => [s.label, s.books.map((x) => x.title).sort(), s.books.every((x) => Object.keys(x).sort().join() === 'id,title')]),
        [['a', ['A1', 'A2'], true], ['b', ['B1'], true]],
      )
    })

    it('soft-deleted targets drop out of populated lists', async () => {
      await d.delete(Product, data.products[2].id)
      const cat = await d.findByIdWithRelations(Category, data.toys.id, ['products'])
      assert.deepEqual(cat.products.map((p) => p.name), ['Kite'])
    })
  })

  describe('discriminators', () => {
    it('a base schema without a value filters on the column like any other', async () => {
      const Node = { name: 'Node', collection: 'nodes', discriminator: 'kind', fields: { title: { type: 'string' } } }
      await d.initSchema([...ALL, Node])
      await d.create(Node, { title: 'a', kind: 'page' })
      await d.create(Node, { title: 'b', kind: 'article' })
      assert.deepEqual((await d.find(Node, { kind: 'page' })).map((n) => n.title), ['a'])
      assert.equal(await d.deleteMany(Node, { kind: 'page' }), 1)
      assert.equal(await d.count(Node, {}), 1)
    })

    it('share one table and see only their own rows', async () => {
      await d.deleteMany(Dog, {})
      await d.deleteMany(Cat, {})
      const rex = await d.create(Dog, { name: 'Rex', good: true })
      const tom = await d.create(Cat, { name: 'Tom', _type: 'dog' })
      assert.equal(rex._type, 'dog')
      assert.equal(tom._type, 'cat', 'the created row shows the value stored')
      assert.deepEqual(await d.findById(Cat, tom.id), tom)
      assert.deepEqual(names(await d.find(Dog, {})), ['Rex'])
      assert.deepEqual(names(await d.find(Cat, {})), ['Tom'])
      assert.equal((await d.find(Cat, {}))[0]._type, 'cat', 'the schema value wins over the caller')
      assert.equal(await d.count(Dog, { _type: 'cat' }), 1, 'a filter on the discriminator is overridden')
    })
  })

  describe('transactions', () => {
    it('commit, rollback on throw, nested savepoints', async () => {
      await d.deleteMany(Tag, {})
      await d.$transaction(async (tx) => {
        await tx.create(Tag, { label: 'kept' })
      })
      await assert.rejects(
        d.$transaction(async (tx) => {
          await tx.create(Tag, { label: 'lost' })
          throw new Error('boom')
        }),
        /boom/,
      )
      await d.$transaction(async (tx) => {
        await tx.create(Tag, { label: 'outer' })
        await assert.rejects(
          tx.$transaction(async (inner) => {
            await inner.create(Tag, { label: 'inner-lost' })
            throw new Error('inner')
          }),
          /inner/,
        )
        await tx.$transaction(async (inner) => {
          await inner.create(Tag, { label: 'inner-kept' })
        })
      })
      assert.deepEqual((await d.find(Tag, {}, { sort: { label: 1 } })).map((t) => t.label), ['inner-kept', 'kept', 'outer'])
    })

    it('20 concurrent transactions leave exactly the committed rows', async () => {
      await d.deleteMany(Tag, {})
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          d.$transaction(async (tx) => {
            await tx.create(Tag, { label: `t${i}-a` })
            await new Promise((r) => setTimeout(r, (i * 7) % 13))
            await tx.create(Tag, { label: `t${i}-b` })
            if (i % 3 === 0) throw new Error(`fail ${i}`)
          }),
        ),
      )
      const committed = results.map((r, i) => [r, i]).filter(([r]) => r.status === 'fulfilled').map(([, i]) => i)
      assert.equal(committed.length, 13)
      const labels = (await d.find(Tag, {})).map((t) => t.label).sort()
      assert.deepEqual(labels, committed.flatMap((i) => [`t${i}-a`, `t${i}-b`]).sort())
    })

    it('calls outside a running transaction are not captured by it', async () => {
      await d.deleteMany(Tag, {})
      let release
      const gate = new Promise((r) => (release = r))
      const tx = d.$transaction(async (t) => {
        await t.create(Tag, { label: 'in' })
        await gate
        throw new Error('rollback')
      })
      await new Promise((r) => setTimeout(r, 20))
      const outside = d.create(Tag, { label: 'out' })
      release()
      await assert.rejects(tx, /rollback/)
      await outside
      assert.deepEqual((await d.find(Tag, {})).map((t) => t.label), ['out'])
    })

    it('a malformed call fails at once, even while a transaction holds the connection', async () => {
      const held = await holdTransaction(d, Tag)
      let outcome
      d.distinct(Tag, '').then(
        () => (outcome = 'resolved'),
        (e) => (outcome = e),
      )
      await new Promise((r) => setTimeout(r, 20))
      assert.ok(outcome instanceof Error, 'rejected before the transaction ended')
      assert.equal(outcome.code, 'E_INVALID_ARGUMENT')
      assert.equal(outcome.field, 'field')
      held.release()
      await held.done
    })

    it('explicit beginTx/commitTx/rollbackTx and LIFO checks', async () => {
      await d.deleteMany(Tag, {})
      const t1 = await d.beginTx()
      assert.match(t1.id, /^tx-[0-9a-z]+-[0-9a-z]{6}$/)
      assert.equal(t1.depth, 1)
      await d.create(Tag, { label: 'explicit' })
      const t2 = await d.beginTx()
      assert.equal(t2.depth, 2)
      assert.match(t2.savepointName, /^mosta_sp_2_/)
      await d.create(Tag, { label: 'nested' })
      await rejectsWith(d.commitTx(t1), 'E_TRANSACTION')
      await d.rollbackTx(t2)
      await d.commitTx(t1)
      assert.deepEqual((await d.find(Tag, {})).map((t) => t.label), ['explicit'])
      const t3 = await d.beginTx({ isolation: 'SERIALIZABLE' })
      await d.create(Tag, { label: 'gone' })
      await d.rollbackTx(t3)
      assert.equal(await d.count(Tag, { label: 'gone' }), 0)
      await rejectsWith(d.beginTx({ isolation: 'SOMETIMES' }), 'E_INVALID_ARGUMENT', { field: 'isolation' })
    })

    it('isolation levels reach the server', async () => {
      for (const isolation of ['READ UNCOMMITTED', 'READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE']) {
        const level = await d.$transaction(
          async (tx) => {
            await tx.count(Tag, {})
            if (b.name === 'postgres') return (await tx.executeQuery("SELECT current_setting('transaction_isolation') AS l"))[0].l
            if (b.name === 'mariadb') {
              await new Promise((r) => setTimeout(r, 150)) // InnoDB refreshes innodb_trx every 100 ms
              const rows = await tx.executeQuery('SELECT trx_isolation_level AS l FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()')
              return rows[0] && rows[0].l
            }
            return isolation // SQLite maps levels onto BEGIN DEFERRED/IMMEDIATE/EXCLUSIVE
          },
          { isolation },
        )
        assert.equal(String(level).toUpperCase().replace('-', ' '), isolation)
      }
    })

    it('a transaction ended behind its back does not block later calls', async () => {
      const outside = new Promise((r) => setTimeout(r, 5)).then(() => d.count(Tag, {}))
      await d
        .$transaction(async (tx) => {
          await tx.executeRun('COMMIT')
          await new Promise((r) => setTimeout(r, 20))
        })
        .catch(() => {})
      assert.equal(typeof (await outside), 'number')
      assert.equal(typeof (await d.count(Tag, {})), 'number')
    })
  })

  describe('errors and atomicity', () => {
    it('constraint violations carry codes, the field and the server code', async () => {
      await seed()
      await rejectsWith(d.create(Product, { name: 'dup', sku: 'H1', price: 1 }), 'E_UNIQUE', { field: 'sku', dbCode: /./ })
      await rejectsWith(d.create(Product, { sku: 'nn', price: 1 }), 'E_NOT_NULL', { field: 'name' })
      await rejectsWith(d.create(Product, { name: 'fk', price: 1, category: 'no-such-category' }), 'E_FOREIGN_KEY')
      await rejectsWith(d.create(Product, 'not an object'), 'E_INVALID_ARGUMENT', { field: 'data' })
      await rejectsWith(d.create({ name: 'Ghost', collection: 'ghosts', fields: {} }, { a: 1 }), 'E_SCHEMA')
      await rejectsWith(d.find({ collection: 'x' }, {}), 'E_SCHEMA')
    })

    it('a failed many-to-many write leaves no partial row', async () => {
      await seed()
      const before = await d.count(Product, {}, { includeDeleted: true })
      const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
      await d.executeRun(`DROP TABLE ${q('product_tags')}`)
      const err = await d.create(Product, { name: 'Half', price: 1, labels: ['x'] }).catch((e) => e)
      assert.ok(err instanceof Error)
      assert.equal(await d.count(Product, {}, { includeDeleted: true }), before)
      await d.initSchema(ALL)
    })

    it('raw SQL: executeQuery and executeRun', async () => {
      await seed()
      const rows = await d.executeQuery(`SELECT name FROM ${b.name === 'mariadb' ? '`products`' : '"products"'} WHERE price > ${ph(1)} ORDER BY price`, [20])
      assert.deepEqual(rows, [{ name: 'hatchet' }])
      const r = await d.executeRun(`UPDATE ${b.name === 'mariadb' ? '`products`' : '"products"'} SET stock = ${ph(1)} WHERE price < ${ph(2)}`, [1, 5])
      assert.deepEqual(r, { changes: 1 })
    })
  })

  describe('large answers', () => {
    // Pooled dialects send a large row list in pieces while the query runs (about every 128 KB
    // of JSON); these reads cross many piece boundaries.
    const N = 2500
    before(async () => {
      await reset()
      await d.$transaction(async (tx) => {
        for (let i = 0; i < N; i++) {
          await tx.create(Product, { name: `Part ${String(i).padStart(5, '0')} ${'x'.repeat(40)}`, sku: `L${i}`, price: i / 4, stock: i % 7, active: i % 2 === 0, releasedAt: new Date(Date.UTC(2024, 0, 1) + i * 60000).toISOString() })
        }
      })
    })

    it('find returns every row once, in order, with dates and booleans decoded', async () => {
      const all = await d.find(Product, {}, { sort: { name: 1 } })
      assert.equal(all.length, N)
      all.forEach((r, i) => {
        assert.equal(r.name.slice(0, 10), `Part ${String(i).padStart(5, '0')}`)
        assert.equal(r.price, i / 4)
        assert.equal(r.active, i % 2 === 0)
        assert.equal(asTime(r.releasedAt), Date.UTC(2024, 0, 1) + i * 60000)
        if (!sqlite) assert.ok(r.createdAt instanceof Date, 'timestamps are Dates')
      })
      // The same rows read page by page (answers far below one piece).
      const pages = []
      for (let skip = 0; skip < N; skip += 500) pages.push(...(await d.find(Product, {}, { sort: { name: 1 }, skip, limit: 500 })))
      assert.deepEqual(all, pages)
    })

    it('a date column first holding values in a later piece is decoded in every piece', async () => {
      // Pieces name their date-time columns on a first line; here releasedAt is null for
      // the first 1,200 rows (several pieces), then holds dates.
      await d.updateMany(Product, { price: { $lt: 300 } }, { releasedAt: null })
      try {
        const all = await d.find(Product, {}, { sort: { name: 1 } })
        assert.equal(all.length, N)
        all.forEach((r, i) => {
          if (i < 1200) assert.equal(r.releasedAt, null, `row ${i}`)
          else assert.equal(asTime(r.releasedAt), Date.UTC(2024, 0, 1) + i * 60000, `row ${i}`)
          if (!sqlite) assert.ok(r.createdAt instanceof Date && (i < 1200 || r.releasedAt instanceof Date), `row ${i} has Dates`)
        })
      } finally {
        for (let i = 0; i < 1200; i += 200) {
          await d.$transaction(async (tx) => {
            for (let j = i; j < i + 200; j++) await tx.updateMany(Product, { sku: `L${j}` }, { releasedAt: new Date(Date.UTC(2024, 0, 1) + j * 60000).toISOString() })
          })
        }
      }
    })

    // List rows are built by generated functions (lib/dialect.js), with loops where a
    // process forbids generating code: both give the same rows, dates included.
    it('lists and created rows read the same where generating code is not allowed', async () => {
      const url = (f) => JSON.stringify(fileURLToPath(new URL(f, import.meta.url)))
      const script = `import p from ${url('../index.js')}
        import { ALL, Product } from ${url('./fixtures.mjs')}
        const d = await p.openIsolatedDialect({ ...${JSON.stringify(config)}, schemaStrategy: 'update' }, ALL)
        const withDates = (r) => [r, Object.keys(r).filter((k) => r[k] instanceof Date)]
        const rows = await d.find(Product, {}, { sort: { name: 1 } })
        const made = await d.create(Product, { name: 'made', price: '2.5', active: 1 })
        const read = await d.findById(Product, made.id)
        await d.delete(Product, made.id)
        console.log(JSON.stringify({ rows: rows.map(withDates), made: withDates(made), read: withDates(read) }))
        await d.disconnect()`
      const runs = [[], ['--disallow-code-generation-from-strings']].map((flags) => {
        const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' })
        assert.equal(r.status, 0, r.stderr)
        return JSON.parse(r.stdout)
      })
      assert.equal(runs[0].rows.length, N)
      assert.deepEqual(runs[1].rows, runs[0].rows)
      if (!sqlite) assert.deepEqual(runs[0].rows[N - 1][1].sort(), ['createdAt', 'releasedAt', 'updatedAt'], 'date-time columns are Dates')
      for (const { made, read } of runs) {
        assert.deepEqual(made, read, 'a created row is what findById reads')
        assert.deepEqual([made[0].price, made[0].active], [2.5, true], 'values the database converted')
        assert.deepEqual(made[1].sort(), sqlite ? [] : ['createdAt', 'updatedAt'])
      }
    })

    it('concurrent large reads and search keep their own rows', async () => {
      const [even, odd, found] = await Promise.all([
        d.find(Product, { active: true }, { sort: { price: -1 } }),
        d.find(Product, { active: false }, { sort: { price: 1 } }),
        d.search(Product, 'Part 01', ['name']),
      ])
      assert.equal(even.length, N / 2)
      assert.equal(odd.length, N / 2)
      assert.ok(even.every((r) => r.active) && odd.every((r) => !r.active))
      assert.deepEqual(even.map((r) => r.price), even.map((r) => r.price).sort((a, b) => b - a))
      assert.deepEqual(odd.map((r) => r.price), odd.map((r) => r.price).sort((a, b) => a - b))
      assert.equal(found.length, 1000, 'Part 01000 to Part 01999')
      assert.equal(new Set(found.map((r) => r.id)).size, 1000)
    })

    it('a failed large read rejects and the next one still works', async () => {
      await rejectsWith(d.find(Product, { nope: 1 }), 'E_UNKNOWN_COLUMN')
      assert.equal((await d.find(Product, {})).length, N)
    })
  })

  describe('single-row answers', () => {
    // One-row answers cross into JavaScript as shaped rows (values by position, keys named
    // once per key list): they must read exactly as the same rows read in a list.
    it('read one at a time equal the same rows read as a list, whatever the select', async () => {
      const { products } = await seed()
      const widget = products[4]
      const shapes = [undefined, { select: ['name'] }, { select: ['price', 'sku'] }, { exclude: ['body', 'meta'] }, { select: ['labels', 'name'] }]
      for (const options of shapes) {
        for (const p of [widget, products[0]]) {
          const [listed] = await d.find(Product, { id: p.id }, options)
          const found = await d.findOne(Product, { id: p.id }, options)
          assert.deepEqual(Object.keys(found), Object.keys(listed), `key order with ${JSON.stringify(options)}`)
          assert.deepEqual(found, listed)
          assert.equal(Object.getPrototypeOf(found), Object.prototype)
        }
      }
      const cat = await d.findById(Category, products[0].category)
      assert.deepEqual(cat, (await d.find(Category, { id: cat.id }))[0])
      assert.equal(await d.findById(Category, 'no-such-id'), null)
      const made = await d.create(Category, { name: 'garden', rank: 7 })
      assert.deepEqual(made, await d.findById(Category, made.id))
      const changed = await d.update(Category, made.id, { rank: 8 })
      assert.deepEqual(Object.keys(changed), Object.keys(made))
      assert.equal(changed.rank, 8)
    })

    it('columns named like JavaScript internals or with quotes stay plain own keys', async () => {
      const Odd = { name: 'OddKeys', collection: 'odd_keys', fields: { label: { type: 'string' } }, relations: {}, indexes: [] }
      await d.initSchema([...ALL, Odd])
      const q = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n.replaceAll('"', '""')}"`)
      const odd = ['__proto__', 'constructor', 'we"ird\\', 'naïve ☃']
      for (const c of odd) await d.executeRun(`ALTER TABLE ${q('odd_keys')} ADD COLUMN ${q(c)} ${b.name === 'postgres' ? 'TEXT' : 'VARCHAR(40)'}`)
      const row = await d.create(Odd, { label: 'x' })
      await d.executeRun(`UPDATE ${q('odd_keys')} SET ${odd.map((c) => `${q(c)} = ${ph(odd.indexOf(c) + 1)}`).join(', ')}`, odd.map((c) => `v:${c}`))
      const read = await d.findById(Odd, row.id)
      assert.equal(Object.getPrototypeOf(read), Object.prototype, 'the prototype is untouched')
      for (const c of odd) {
        assert.ok(Object.hasOwn(read, c), `${c} is an own key`)
        assert.equal(read[c], `v:${c}`)
      }
      assert.deepEqual(read, (await d.find(Odd, { id: row.id }))[0])
      await d.dropSchema([Odd])
      await d.initSchema(ALL)
    })

    it('text of any length and alphabet crosses both ways unchanged', async () => {
      const { products } = await seed()
      // Short and long (the long argument is read another way), ASCII and not, astral and
      // control characters.
      const texts = ['plain', 'é ☃ 𝄞 \u0001 "q" \\', 'ab'.repeat(40_000), `${'ü'.repeat(30_000)}𝄞`]
      for (const body of texts) {
        const made = await d.create(Product, { name: 'texts', sku: `T${body.length}`, price: 1, body })
        assert.equal(made.body, body, `create of ${body.length} units`)
        assert.equal((await d.findById(Product, made.id)).body, body)
        assert.equal((await d.update(Product, products[0].id, { body })).body, body)
      }
    })
  })

  describe('maintenance', () => {
    it('truncate, drop and testConnection', async () => {
      await seed()
      assert.equal(await d.testConnection(), true)
      await d.truncateTable('tags')
      assert.equal(await d.count(Tag, {}), 0)
      const emptied = await d.truncateAll([Tag, Product])
      assert.deepEqual(emptied, ['product_tags', 'tags', 'products'])
      const categories = await d.count(Category, {})
      assert.deepEqual(await d.truncateAll([]), [], 'an empty list empties nothing')
      assert.equal(await d.count(Category, {}), categories)
      const dropped = await d.dropSchema([Dog])
      assert.deepEqual(dropped, ['animals'])
      await rejectsWith(d.find(Dog, {}), 'E_SCHEMA')
      await d.initSchema(ALL)
      assert.equal(await d.count(Dog, {}), 0)
    })
  })

  describe('process lifetime', { skip: sqlite && 'SQLite calls do not wait on other threads' }, () => {
    it('a call in flight keeps the process alive, and nothing does once calls settle', () => {
      // No disconnect: the pool's connections alone must not hold the process, while an
      // unsettled top-level await would end it with exit code 13.
      const url = JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))
      const sleep = b.name === 'postgres' ? 'SELECT pg_sleep(0.3) AS slept' : 'SELECT SLEEP(0.3) AS slept'
      const script = `import p from ${url}
        const d = await p.openIsolatedDialect(${JSON.stringify(config)})
        const rows = await d.executeQuery(${JSON.stringify(sleep)})
        console.log(JSON.stringify(rows.length))`
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
      assert.equal(r.signal, null, 'the process ended on its own')
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout.trim(), '1')
    })
  })
})
