// The schemas of orm-compat.md §2.9 and the layout the reference writes for them.

export const LCategory = { name: 'Category', collection: 'categories', fields: { name: { type: 'string' } }, relations: {}, indexes: [] }
export const LTag = { name: 'Tag', collection: 'tags', fields: { label: { type: 'string' } }, relations: {}, indexes: [] }
export const LProduct = {
  name: 'Product',
  collection: 'products',
  timestamps: true,
  softDelete: true,
  fields: {
    name: { type: 'string', required: true },
    slug: { type: 'string', required: true, unique: true },
    body: { type: 'text' },
    price: { type: 'number', required: true },
    stock: { type: 'number', default: 0 },
    flag: { type: 'boolean' },
    status: { type: 'string', default: 'draft' },
    tags: { type: 'array' },
    metadata: { type: 'json' },
    publishedAt: { type: 'date' },
    seenAt: { type: 'date', default: 'now' },
    jdef: { type: 'json', default: { a: 1 } },
  },
  relations: {
    category: { target: 'Category', type: 'many-to-one' },
    owner: { target: 'Tag', type: 'one-to-one', required: true, joinColumn: 'ownerId', onDelete: 'cascade' },
    labels: { target: 'Tag', type: 'many-to-many', through: 'product_tags' },
  },
  indexes: [{ fields: { status: 'asc', price: 'desc' } }, { fields: ['name'] }, { fields: { slug: 'asc' }, unique: true, sparse: true }],
}
export const LNode = { name: 'Node', collection: 'nodes', discriminator: '_type', discriminatorValue: 'node', fields: { title: { type: 'string' } }, relations: {}, indexes: [] }

export const LAYOUT_SCHEMAS = [LCategory, LTag, LProduct, LNode]

/** orm-compat.md §2.9, as SQLite keeps it in sqlite_master (IF NOT EXISTS dropped). */
export const SQLITE_DDL = {
  products: `CREATE TABLE "products" (
    "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "slug" TEXT NOT NULL, "body" TEXT, "price" REAL NOT NULL,
    "stock" REAL DEFAULT 0, "flag" INTEGER, "status" TEXT DEFAULT 'draft', "tags" TEXT, "metadata" TEXT,
    "publishedAt" TEXT, "seenAt" TEXT, "jdef" TEXT DEFAULT '{"a":1}', "category" TEXT, "ownerId" TEXT NOT NULL UNIQUE,
    "createdAt" TEXT, "updatedAt" TEXT, "deletedAt" TEXT,
    FOREIGN KEY ("category") REFERENCES "categories"("id") ON DELETE SET NULL,
    FOREIGN KEY ("ownerId") REFERENCES "tags"("id") ON DELETE CASCADE)`,
  nodes: `CREATE TABLE "nodes" ("id" TEXT PRIMARY KEY, "title" TEXT, "_type" VARCHAR(100) NOT NULL)`,
  product_tags: `CREATE TABLE "product_tags" ("productId" TEXT NOT NULL, "tagId" TEXT NOT NULL, PRIMARY KEY ("productId", "tagId"))`,
  idx_products_0: `CREATE INDEX "idx_products_0" ON "products" ("status" ASC, "price" DESC)`,
  idx_products_1: `CREATE INDEX "idx_products_1" ON "products" ("name" ASC)`,
  idx_products_2: `CREATE UNIQUE INDEX "idx_products_2" ON "products" ("slug" ASC) WHERE "deletedAt" IS NULL`,
}

/** Column types per backend (orm-compat.md §2.3), in table order. */
export const PRODUCT_COLUMNS = [
  ['id', 'id'],
  ['name', 'string'],
  ['slug', 'string'],
  ['body', 'text'],
  ['price', 'number'],
  ['stock', 'number'],
  ['flag', 'boolean'],
  ['status', 'string'],
  ['tags', 'array'],
  ['metadata', 'json'],
  ['publishedAt', 'date'],
  ['seenAt', 'date'],
  ['jdef', 'json'],
  ['category', 'id'],
  ['ownerId', 'id'],
  ['createdAt', 'date'],
  ['updatedAt', 'date'],
  ['deletedAt', 'date'],
]

export const TYPE_NAMES = {
  postgres: { id: 'text', string: 'text', text: 'text', number: 'double precision', boolean: 'boolean', date: 'timestamp with time zone', json: 'jsonb', array: 'jsonb' },
  // MariaDB reports JSON columns as longtext (JSON is an alias there).
  mariadb: { id: 'varchar(36)', string: 'varchar(255)', text: 'longtext', number: 'double', boolean: 'tinyint(1)', date: 'datetime', json: /^(json|longtext)$/, array: /^(json|longtext)$/ },
}
