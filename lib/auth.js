'use strict'
// ensureApiKey / clearCachedApiKey: the resolution order, device flow and token cache are
// native; this adds the callback guard (a throwing callback must not crash the process).

const { binding, envSnapshot } = require('./native')
const { fromNative, invalidArgument } = require('./errors')

async function ensureApiKey(options = {}) {
  const { onCodeIssued, ...rest } = options || {}
  if (onCodeIssued !== undefined && typeof onCodeIssued !== 'function') throw invalidArgument('onCodeIssued must be a function', 'onCodeIssued')
  const guarded = onCodeIssued
    ? (info) => {
        try {
          onCodeIssued(info)
        } catch (e) {
          process.emitWarning(`onCodeIssued threw: ${e && e.message}`)
        }
      }
    : undefined
  try {
    return await binding.ensureApiKey(envSnapshot(), JSON.stringify(rest), guarded)
  } catch (e) {
    throw fromNative(e)
  }
}

async function clearCachedApiKey(options = {}) {
  try {
    binding.clearCachedApiKey(envSnapshot(), JSON.stringify(options || {}))
  } catch (e) {
    throw fromNative(e)
  }
}

module.exports = { ensureApiKey, clearCachedApiKey }
