'use strict'
// @mostajs/data-plug: the documented API. The work happens in the native core; this file
// only gathers the exports.

const plug = require('./lib/data-plug')
const registry = require('./lib/registry')
const { BaseRepository, resolveLookup, findMatchingUniqueIndex, extractRelId } = require('./lib/repository')
const { normalizeDoc, normalizeDocs } = require('./lib/normalize')
const { MostaError, OrmIntrospectionError } = require('./lib/errors')

module.exports = {
  ...plug,
  ...registry,
  BaseRepository,
  normalizeDoc,
  normalizeDocs,
  resolveLookup,
  findMatchingUniqueIndex,
  extractRelId,
  MostaError,
  OrmIntrospectionError,
}
