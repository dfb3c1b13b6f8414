'use strict'
// The schema registry shared by the whole app (module-global, as the reference's).

const { MostaError } = require('./errors')

const byName = new Map()
const byCollection = new Map()

function registerSchema(schema) {
  if (!schema || typeof schema !== 'object') throw new MostaError('E_SCHEMA', 'registerSchema expects an EntitySchema object')
  if (typeof schema.name !== 'string' || !schema.name) throw new MostaError('E_SCHEMA', 'EntitySchema.name must be a non-empty string', { field: 'name' })
  if (typeof schema.collection !== 'string' || !schema.collection) {
    throw new MostaError('E_SCHEMA', `schema "${schema.name}": collection must be a non-empty string`, { entity: schema.name, field: 'collection' })
  }
  byName.set(schema.name, schema)
  byCollection.set(schema.collection, schema)
}

function registerSchemas(schemas) {
  for (const s of schemas) registerSchema(s)
}

function getSchema(name) {
  const s = byName.get(name)
  if (!s) {
    throw new MostaError('E_SCHEMA', `Entity "${name}" is not registered. Available entities: ${[...byName.keys()].join(', ')}`, { entity: name })
  }
  return s
}

const getSchemaByCollection = (collection) => byCollection.get(collection)
const getAllSchemas = () => [...byName.values()]
const getEntityNames = () => [...byName.keys()]
const hasSchema = (name) => byName.has(name)

function validateSchemas() {
  const errors = []
  for (const s of byName.values()) {
    for (const [rel, def] of Object.entries(s.relations || {})) {
      if (!byName.has(def.target)) errors.push(`${s.name}.${rel} references unknown entity "${def.target}"`)
    }
  }
  return { valid: errors.length === 0, errors }
}

function clearRegistry() {
  byName.clear()
  byCollection.clear()
}

module.exports = {
  registerSchema,
  registerSchemas,
  getSchema,
  getSchemaByCollection,
  getAllSchemas,
  getEntityNames,
  hasSchema,
  validateSchemas,
  clearRegistry,
}
