// Schemas shared by the suites: every field type, every relation kind, soft delete,
// timestamps, a discriminator pair, indexes.

export const Category = {
  name: 'Category',
  collection: 'categories',
  fields: { name: { type: 'string', required: true, unique: true }, rank: { type: 'number' } },
  relations: { products: { target: 'Product', type: 'one-to-many', mappedBy: 'category' } },
  indexes: [],
}

export const Tag = {
  name: 'Tag',
  collection: 'tags',
  fields: { label: { type: 'string', required: true } },
  relations: {},
  indexes: [],
}

export const Manual = {
  name: 'Manual',
  collection: 'manuals',
  fields: { title: { type: 'string' } },
  relations: {},
  indexes: [],
}

export const Product = {
  name: 'Product',
  collection: 'products',
  timestamps: true,
  softDelete: true,
  fields: {
    name: { type: 'string', required: true },
    sku: { type: 'string', unique: true },
    price: { type: 'number', required: true },
    stock: { type: 'number', default: 0 },
    active: { type: 'boolean', default: true },
    tags: { type: 'array' },
    meta: { type: 'json' },
    releasedAt: { type: 'date' },
    body: { type: 'text' },
  },
  relations: {
    category: { target: 'Category', type: 'many-to-one' },
    labels: { target: 'Tag', type: 'many-to-many', through: 'product_tags' },
    manual: { target: 'Manual', type: 'one-to-one', joinColumn: 'manualId', fetch: 'eager' },
  },
  indexes: [{ fields: { price: 'desc' } }, { fields: ['name'] }],
}

export const Dog = {
  name: 'Dog',
  collection: 'animals',
  discriminator: '_type',
  discriminatorValue: 'dog',
  fields: { name: { type: 'string' }, good: { type: 'boolean' } },
  relations: {},
  indexes: [],
}

export const Cat = { ...Dog, name: 'Cat', discriminatorValue: 'cat' }

export const ALL = [Category, Tag, Manual, Product, Dog, Cat]
