'use strict'
// Errors thrown by the package. The native core reports failures as a JSON message; they are
// rebuilt here, in the caller's realm, as `MostaError`s carrying a stable `code`.

class MostaError extends Error {
  constructor(code, message, extra) {
    super(message)
    this.name = 'MostaError'
    this.code = code
    if (extra) {
      for (const k of ['dbCode', 'status', 'entity', 'field']) {
        if (extra[k] !== undefined) this[k] = extra[k]
      }
    }
  }
}

/** Raised by BaseRepository.findById when an object names no id and no unique index. */
class OrmIntrospectionError extends Error {
  constructor(message, schemaName, input, availableFields) {
    super(message)
    this.name = 'OrmIntrospectionError'
    this.code = 'E_INVALID_ARGUMENT'
    this.schemaName = schemaName
    this.input = input
    this.availableFields = availableFields
  }
}

/** Turns whatever the native layer threw into a MostaError. */
function fromNative(e) {
  const msg = e && typeof e.message === 'string' ? e.message : ''
  if (msg.startsWith('{"code":"E_')) {
    try {
      const p = JSON.parse(msg)
      return new MostaError(p.code, p.message, p)
    } catch {
      // fall through: not our payload after all
    }
  }
  if (e instanceof MostaError) return e
  // A panic caught by the binding or an argument napi rejected before our code ran.
  const err = new MostaError(e && e.code === 'InvalidArg' ? 'E_INVALID_ARGUMENT' : 'E_INTERNAL', msg || String(e))
  err.cause = e
  return err
}

function invalidArgument(message, field) {
  return new MostaError('E_INVALID_ARGUMENT', message, { field })
}

module.exports = { MostaError, OrmIntrospectionError, fromNative, invalidArgument }
