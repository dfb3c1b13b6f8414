// Schema strategies, the on-disk layout of orm-compat.md §2, table prefixes and the
// auto-ALTER on write, per backend.
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import plug from '../index.js'
import { forEachBackend, rejectsWith } from './helpers.mjs'
import { LAYOUT_SCHEMAS, SQLITE_DDL, PRODUCT_COLUMNS, TYPE_NAMES } from './layout.fixtures.mjs'

const squash = (s) => s.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim()

const Item = { name: 'Item', collection: 'items', fields: { title: { type: 'string', required: true } }, relations: {}, indexes: [] }
const ItemV2 = {
  ...Item,
  timestamps: true,
  softDelete: true,
  fields: { ...Item.fields, qty: { type: 'number', default: 7 }, note: { type: 'text' } },
  relations: { owner: { target: 'Owner', type: 'many-to-one' } },
  indexes: [{ fields: { qty: 'asc' } }],
}
const Owner = { name: 'Owner', collection: 'owners', fields: { n: { type: 'string' } }, relations: {}, indexes: [] }

await forEachBackend('schema', (b) => {
  const quote = (n) => (b.name === 'mariadb' ? `\`${n}\`` : `"${n}"`)
  const open = async (cfg, strategy, schemas, extra = {}) => {
    const d = await plug.openIsolatedDialect({ ...cfg, schemaStrategy: strategy, ...extra }, schemas)
    after(() => d.disconnect().catch(() => {}))
    return d
  }

  it('layout: the DDL matches orm-compat.md §2', async () => {
    const cfg = await b.fresh('layout')
    const d = await open(cfg, 'create', LAYOUT_SCHEMAS)
    if (b.name === 'sqlite') {
      const rows = await d.executeQuery("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
      const byName = Object.fromEntries(rows.map((r) => [r.name, r.sql]))
      for (const [name, ddl] of Object.entries(SQLITE_DDL)) assert.equal(squash(byName[name]), squash(ddl), name)
      assert.ok(!('uidx_products_slug_softdelete' in byName), 'slug is covered by its explicit unique index')
      return
    }
    const types = TYPE_NAMES[b.name]
    const cols =
      b.name === 'postgres'
        ? await d.executeQuery("SELECT column_name AS c, data_type AS t, is_nullable AS n FROM information_schema.columns WHERE table_name = 'products' AND table_schema = current_schema() ORDER BY ordinal_position")
        : await d.executeQuery("SELECT column_name AS c, column_type AS t, is_nullable AS n FROM information_schema.columns WHERE table_name = 'products' AND table_schema = DATABASE() ORDER BY ordinal_position")
    assert.deepEqual(cols.map((c) => c.c), PRODUCT_COLUMNS.map(([c]) => c))
    for (const [i, [c, kind]] of PRODUCT_COLUMNS.entries()) {
      const want = types[kind]
      if (want instanceof RegExp) assert.match(cols[i].t.toLowerCase(), want, c)
      else assert.equal(cols[i].t.toLowerCase(), want, c)
    }
    assert.deepEqual(cols.filter((c) => c.n === 'NO').map((c) => c.c), ['id', 'name', 'slug', 'price', 'ownerId'])
    const fks =
      b.name === 'postgres'
        ? await d.executeQuery("SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'f' ORDER BY conname")
        : await d.executeQuery("SELECT rc.constraint_name AS name, rc.delete_rule AS def FROM information_schema.referential_constraints rc WHERE rc.constraint_schema = DATABASE() ORDER BY rc.constraint_name")
    assert.deepEqual(fks.map((f) => f.name).sort(), ['fk_product_tags_productId', 'fk_product_tags_tagId', 'fk_products_category', 'fk_products_ownerId'])
    assert.match(fks.find((f) => f.name === 'fk_products_category').def, /SET NULL/)
    assert.match(fks.find((f) => f.name === 'fk_products_ownerId').def, /CASCADE/)
    const idx =
      b.name === 'postgres'
        ? await d.executeQuery("SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'products' AND schemaname = current_schema()")
        : await d.executeQuery("SELECT DISTINCT index_name AS name, non_unique AS def FROM information_schema.statistics WHERE table_name = 'products' AND table_schema = DATABASE()")
    const names = idx.map((i) => i.name)
    for (const n of ['idx_products_0', 'idx_products_1', 'idx_products_2']) assert.ok(names.includes(n), `${n} in ${names}`)
    if (b.name === 'postgres') assert.match(idx.find((i) => i.name === 'idx_products_2').def, /UNIQUE INDEX .* WHERE \("deletedAt" IS NULL\)/)
    const disc = b.name === 'postgres'
      ? await d.executeQuery("SELECT data_type AS t, character_maximum_length AS l, is_nullable AS n FROM information_schema.columns WHERE table_name = 'nodes' AND column_name = '_type' AND table_schema = current_schema()")
      : await d.executeQuery("SELECT column_type AS t, is_nullable AS n FROM information_schema.columns WHERE table_name = 'nodes' AND column_name = '_type' AND table_schema = DATABASE()")
    assert.match(disc[0].t.toLowerCase(), /^(character varying|varchar\(100\))$/)
    assert.equal(disc[0].n, 'NO')
  })

  it('none creates nothing; validate names the missing table; update creates it', async () => {
    const cfg = await b.fresh('strategies')
    const none = await open(cfg, 'none', [Item])
    await rejectsWith(none.find(Item, {}), 'E_SCHEMA')
    await rejectsWith(open(cfg, 'validate', [Item]), 'E_SCHEMA', {
      message: 'Schema validation failed: table "items" does not exist (entity: Item). Set schemaStrategy to "update" or "create".',
    })
    const upd = await open(cfg, 'update', [Item])
    await upd.create(Item, { title: 'a' })
    const val = await open(cfg, 'validate', [Item])
    assert.equal(await val.count(Item, {}), 1)
  })

  it('update adds new columns, relations and system columns to an existing table and keeps its rows', async () => {
    const cfg = await b.fresh('update')
    const v1 = await open(cfg, 'update', [Item])
    const a = await v1.create(Item, { title: 'old' })
    const v2 = await open(cfg, 'update', [Owner, ItemV2])
    const o = await v2.create(Owner, { n: 'me' })
    const old = await v2.findById(ItemV2, a.id)
    assert.equal(old.title, 'old')
    assert.equal(old.qty, 7, 'the new column takes its default')
    assert.equal(old.deletedAt, null)
    const u = await v2.update(ItemV2, a.id, { owner: o.id, note: 'n' })
    assert.equal(u.owner, o.id)
    assert.ok(u.updatedAt)
    assert.equal((await v2.findWithRelations(ItemV2, {}, ['owner']))[0].owner.n, 'me')
    if (b.name !== 'sqlite') {
      // SQLite cannot add a foreign key to an existing table; the others get a named one.
      await rejectsWith(v2.update(ItemV2, a.id, { owner: 'no-such-owner' }), 'E_FOREIGN_KEY')
    }
  })

  it('undeclared keys: a column added inside a rolled-back transaction is added again later', async () => {
    const cfg = await b.fresh('altertx')
    const d = await open(cfg, 'update', [Item])
    await assert.rejects(
      d.$transaction(async (tx) => {
        await tx.create(Item, { title: 't', extra: 1 })
        // The column exists for the rest of the transaction, but is not remembered.
        assert.equal((await tx.create(Item, { title: 'u', extra: 3 })).extra, 3)
        throw new Error('undo')
      }),
      /undo/,
    )
    const r = await d.create(Item, { title: 't', extra: 2 })
    assert.equal(r.extra, 2)
  })

  it('undeclared keys: what a rolled-back transaction taught about a table is forgotten', async () => {
    const cfg = await b.fresh('altertx2')
    const d = await open(cfg, 'update', [Item])
    await assert.rejects(
      d.$transaction(async (tx) => {
        // A MySQL ALTER commits at once; elsewhere it is undone with the transaction.
        await tx.executeRun(`ALTER TABLE ${quote('items')} ADD ${quote('late')} ${b.name === 'postgres' ? 'DOUBLE PRECISION' : 'DOUBLE'}`)
        assert.equal((await tx.create(Item, { title: 'x', late: 1 })).late, 1)
        throw new Error('undo')
      }),
      /undo/,
    )
    assert.equal((await d.create(Item, { title: 'y', late: 2 })).late, 2, 'the column is added again where it was rolled back')
  })

  it('create drops existing tables, parents included', async () => {
    const cfg = await b.fresh('create')
    const v1 = await open(cfg, 'update', [Owner, ItemV2])
    const o = await v1.create(Owner, { n: 'x' })
    await v1.create(ItemV2, { title: 't', owner: o.id })
    await v1.disconnect()
    const v2 = await open(cfg, 'create', [Owner, ItemV2])
    assert.equal(await v2.count(Owner, {}), 0)
    assert.equal(await v2.count(ItemV2, {}), 0)
  })

  it('undeclared keys add a column when a strategy is set, and fail under none', async () => {
    const cfg = await b.fresh('autoalter')
    const d = await open(cfg, 'update', [Item])
    const r = await d.create(Item, { title: 't', extraUndeclared: 42 })
    assert.equal(r.extraUndeclared, 42)
    const none = await open(cfg, 'none', [Item])
    await rejectsWith(none.create(Item, { title: 't', another: 1 }), 'E_UNKNOWN_COLUMN', { field: /another/ })
  })

  it('a table prefix applies to tables, not to index or constraint names', async () => {
    const cfg = await b.fresh('prefix')
    const Box = { name: 'Box', collection: 'boxes', fields: { n: { type: 'string' } }, relations: { labels: { target: 'Tag', type: 'many-to-many', through: 'box_tags' } } }
    const d = await open(cfg, 'create', [...LAYOUT_SCHEMAS, Box], { tablePrefix: 'app_' })
    const tables = await d._admin('listTables')
    for (const t of ['app_categories', 'app_tags', 'app_products', 'app_nodes', 'app_product_tags']) assert.ok(tables.includes(t), `${t} in ${tables}`)
    const [cat, tag] = [await d.create(LAYOUT_SCHEMAS[0], { name: 'c' }), await d.create(LAYOUT_SCHEMAS[1], { label: 't' })]
    const p = await d.create(LAYOUT_SCHEMAS[2], { name: 'n', slug: 's', price: 1, owner: tag.id, category: cat.id, labels: [tag.id] })
    assert.equal((await d.findByIdWithRelations(LAYOUT_SCHEMAS[2], p.id, ['labels'])).labels.length, 1)
    await d.create(Box, { n: 'b', labels: [tag.id] })
    assert.equal(await d.deleteMany(Box, {}), 1)
    assert.deepEqual(await d.executeQuery(`SELECT * FROM ${quote('app_box_tags')}`), [], 'junction rows of deleted rows are removed')
    if (b.name === 'postgres') {
      // Constraint names are per table here: a second app with another prefix gets its FKs.
      const other = await open(cfg, 'update', LAYOUT_SCHEMAS, { tablePrefix: 'b_' })
      const fks = await other.executeQuery("SELECT conrelid::regclass::text AS t, conname AS n FROM pg_constraint WHERE contype = 'f' AND conname = 'fk_products_category' ORDER BY 1")
      assert.deepEqual(fks.map((f) => f.t), ['app_products', 'b_products'])
    }
    // dropTable drops the prefixed table only, never another app's unprefixed one.
    await d.executeRun(`CREATE TABLE ${quote('nodes')} (${quote('id')} VARCHAR(36))`)
    await d.dropTable('nodes')
    const after = await d._admin('listTables')
    assert.ok(after.includes('nodes') && !after.includes('app_nodes'))
  })
})
