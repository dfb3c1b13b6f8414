'use strict'
// `create` data that is a plain object travels to the SQL dialects as call arguments (see
// src/records.rs): its key list is numbered once per dialect, then each call passes the
// values. For a small create, JSON.stringify and the native parse of its text cost more
// than the rest of the binding's work. Values JSON would change (Dates, nested objects,
// undefined, NaN, …) make the native side answer `undefined`, and the data goes as JSON.

/** Most values one call carries (MAX_VALUES in src/records.rs). */
const MAX_VALUES = 64

/**
 * A numbered key list; `read(data)`, the values of `data` (which has these keys) in that
 * order; and `send(f, dialect, handle, shape, tx, values)`, which calls `f` with those
 * arguments followed by the values. The values are read once and kept: a created row may
 * be answered as a template of them (see `created` in dialect.js).
 */
class Shape {
  constructor(keys, number) {
    this.keys = keys
    this.number = number
    this.read = valuesReader(keys)
    this.send = valuesCaller(keys.length)
  }
}

class RecordShapes {
  /** `register(keys)`: the native number of a key list, or null when no more are kept. */
  constructor(register) {
    this._register = register
    /** Key-list JSON → Shape. */
    this._byKeys = new Map()
    this._full = false
    /** Per schema handle, the shape of its last create (creates repeat one shape). */
    this._last = []
  }

  /**
   * The Shape of `data`'s keys (as `Object.keys` lists them) when `data` of schema handle
   * `h` may travel as values; undefined when it goes as JSON.
   */
  of(h, data, keys) {
    if (!isPlainObject(data)) return undefined
    const last = this._last[h]
    if (last !== undefined && sameKeys(last.keys, keys)) return last
    if (keys.length > MAX_VALUES) return undefined
    const json = JSON.stringify(keys)
    let shape = this._byKeys.get(json)
    if (shape === undefined) {
      // Once the session keeps no more key lists, new ones go as JSON (and are not kept).
      if (this._full) return undefined
      const number = this._register(keys)
      if (number === null) {
        this._full = true
        return undefined
      }
      shape = new Shape(keys, number)
      this._byKeys.set(json, shape)
    }
    this._last[h] = shape
    return shape
  }
}

/** Own keys in the same order; property names are interned, so `===` is a pointer test. */
function sameKeys(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A class instance may have a `toJSON` (or getters) that JSON would honour: JSON path. */
function isPlainObject(v) {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/**
 * Generated code reads each key through an inline cache and passes each value as its own
 * argument, a create about 8 % faster than spreading; where generating code is not allowed,
 * the same is done in loops. (JSON text of a string is a JavaScript string literal.)
 */
function valuesReader(keys) {
  try {
    return new Function('d', `return [${keys.map((k) => `d[${JSON.stringify(k)}]`).join(', ')}]`)
  } catch {
    return (d) => keys.map((k) => d[k])
  }
}

function valuesCaller(n) {
  try {
    const values = Array.from({ length: n }, (_, i) => `, v[${i}]`).join('')
    return new Function('f', 's', 'h', 'shape', 'tx', 'v', `return f(s, h, shape, tx${values})`)
  } catch {
    return (f, s, h, shape, tx, v) => f(s, h, shape, tx, ...v)
  }
}

module.exports = { RecordShapes }
