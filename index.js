'use strict'
// @mostajs/data-plug: the documented API. The work happens in the native core; this file
// only gathers the exports.

const plug = require('./lib/data-plug')
const registry = require('./lib/registry')
const { BaseRepository, resolveLookup, findMatchingUniqueIndex, extractRelId } = require('./lib/repository')
const { normalizeDoc, normalizeDocs } = require('./lib/normalize')
const { MostaError, OrmIntrospectionError } = require('./lib/errors')
const { ensureApiKey, clearCachedApiKey } = require('./lib/auth')

module.exports = {
  ...plug,
  ...registry,
  ensureApiKey,
  clearCachedApiKey,
  BaseRepository,
  normalizeDoc,
  normalizeDocs,
  resolveLookup,
  findMatchingUniqueIndex,
  extractRelId,
  MostaError,
  OrmIntrospectionError,
}
