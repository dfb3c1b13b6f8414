'use strict'
// normalizeDoc: Mongo-style `_id`/`__v` → `id` first. SQL rows have no `_id`, so for them
// the only effect is moving `id` to the front; rows already in that shape are returned as
// they are (no copy on the hot path).

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v)
}

const hasId = (v) => isPlainObject(v) && '_id' in v

function alreadyNormal(doc) {
  if ('_id' in doc || '__v' in doc) return false
  let first = true
  for (const k in doc) {
    if (first) {
      if (k !== 'id') return false
      first = false
    }
    const v = doc[k]
    if (v !== null && typeof v === 'object') {
      if (Array.isArray(v) ? v.some(hasId) : hasId(v)) return false
    }
  }
  return true
}

function normalizeDoc(doc) {
  if (!doc || typeof doc !== 'object') return doc
  if (alreadyNormal(doc)) return doc
  const out = { id: '_id' in doc && doc._id != null ? String(doc._id) : doc.id }
  for (const [k, v] of Object.entries(doc)) {
    if (k === '_id' || k === '__v' || k === 'id') continue
    if (Array.isArray(v)) out[k] = v.map((i) => (hasId(i) ? normalizeDoc(i) : i))
    else out[k] = hasId(v) ? normalizeDoc(v) : v
  }
  return out
}

function normalizeDocs(docs) {
  return Array.isArray(docs) ? docs.map(normalizeDoc) : docs
}

module.exports = { normalizeDoc, normalizeDocs }
