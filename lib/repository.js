'use strict'
// BaseRepository: a thin wrapper over a dialect for one schema; every read result goes
// through normalizeDoc (orm-compat.md §11.2).

const { normalizeDoc, normalizeDocs } = require('./normalize')
const { OrmIntrospectionError } = require('./errors')

const present = (v) => v !== undefined && v !== null && v !== ''

/** Unique indexes in declaration order, as lists of field names (array form never matches). */
function uniqueIndexes(schema) {
  return (schema.indexes || []).filter((i) => i && i.unique && i.fields && !Array.isArray(i.fields)).map((i) => Object.keys(i.fields))
}

/** The first unique index whose every field the object carries, or null. */
function findMatchingUniqueIndex(schema, obj) {
  for (const fields of uniqueIndexes(schema)) {
    if (fields.length > 0 && fields.every((f) => present(obj[f]))) return { fields, filter: Object.fromEntries(fields.map((f) => [f, obj[f]])) }
  }
  return null
}

/**
 * How findById reads its argument: nothing, a primary key, or a natural-key filter.
 * @returns {{kind:'none'}|{kind:'id', id:string}|{kind:'filter', filter:object}}
 */
function resolveLookup(schema, input) {
  if (input === null || input === undefined || input === '') return { kind: 'none' }
  if (typeof input === 'string') return { kind: 'id', id: input }
  if (typeof input === 'number') return { kind: 'id', id: String(input) }
  if (typeof input === 'object') {
    if (present(input.id)) return { kind: 'id', id: String(input.id) }
    const m = findMatchingUniqueIndex(schema, input)
    if (m) return { kind: 'filter', filter: m.filter }
    const keys = Object.keys(input)
    const available = uniqueIndexes(schema).map((f) => f.join('+'))
    throw new OrmIntrospectionError(
      `Cannot resolve findById on '${schema.name}': object lacks 'id' and no unique index matches. Object fields: [${keys.join(', ')}]. Available unique indexes: [${available.length ? available.join(', ') : 'none'}].`,
      schema.name,
      input,
      keys,
    )
  }
  throw new OrmIntrospectionError(`Cannot resolve findById on '${schema.name}': unsupported input type '${typeof input}'.`, schema.name, input, [])
}

/** extractRelId: the id behind a relation value (string, number or populated object). */
function extractRelId(v) {
  if (v === null || v === undefined) return ''
  if (typeof v === 'string') return v
  if (typeof v === 'number') return String(v)
  if (typeof v === 'object') return v.id !== undefined && v.id !== null ? String(v.id) : ''
  return ''
}

class BaseRepository {
  constructor(schema, dialect) {
    this.schema = schema
    this.dialect = dialect
  }

  async findAll(filter = {}, options) {
    return normalizeDocs(await this.dialect.find(this.schema, filter, options))
  }

  async findOne(filter, options) {
    return normalizeDoc(await this.dialect.findOne(this.schema, filter, options))
  }

  async findById(idOrEntity, options) {
    const l = resolveLookup(this.schema, idOrEntity)
    if (l.kind === 'none') return null
    if (l.kind === 'id') return normalizeDoc(await this.dialect.findById(this.schema, l.id, options))
    return normalizeDoc(await this.dialect.findOne(this.schema, l.filter, options))
  }

  async findByIdWithRelations(id, relations, options) {
    if (!relations || relations.length === 0) return this.findById(id, options)
    return normalizeDoc(await this.dialect.findByIdWithRelations(this.schema, id, relations, options))
  }

  async findWithRelations(filter, relations, options) {
    return normalizeDocs(await this.dialect.findWithRelations(this.schema, filter || {}, relations || [], options))
  }

  async create(data) {
    return normalizeDoc(await this.dialect.create(this.schema, data))
  }

  async update(id, data) {
    return normalizeDoc(await this.dialect.update(this.schema, id, data))
  }

  updateMany(filter, data) {
    return this.dialect.updateMany(this.schema, filter, data)
  }

  delete(id) {
    return this.dialect.delete(this.schema, id)
  }

  deleteMany(filter) {
    return this.dialect.deleteMany(this.schema, filter)
  }

  count(filter = {}, options) {
    return this.dialect.count(this.schema, filter, options)
  }

  distinct(field, filter = {}, options) {
    return this.dialect.distinct(this.schema, field, filter, options)
  }

  aggregate(stages, options) {
    return this.dialect.aggregate(this.schema, stages, options)
  }

  async upsert(filter, data) {
    return normalizeDoc(await this.dialect.upsert(this.schema, filter, data))
  }

  async increment(id, field, amount) {
    return normalizeDoc(await this.dialect.increment(this.schema, id, field, amount))
  }

  async addToSet(id, field, value) {
    return normalizeDoc(await this.dialect.addToSet(this.schema, id, field, value))
  }

  async pull(id, field, value) {
    return normalizeDoc(await this.dialect.pull(this.schema, id, field, value))
  }

  /** Searches every field of type `string`. */
  async search(query, options) {
    const fields = Object.entries(this.schema.fields || {})
      .filter(([, f]) => f && f.type === 'string')
      .map(([n]) => n)
    return normalizeDocs(await this.dialect.search(this.schema, query, fields, options))
  }
}

module.exports = { BaseRepository, resolveLookup, findMatchingUniqueIndex, extractRelId }
