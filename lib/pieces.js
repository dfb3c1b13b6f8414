'use strict'
// Large row answers of the pooled dialects arrive in pieces while the query still runs
// (crates/core/src/dialect/chunks.rs), so that parsing them overlaps the server sending the
// rest. Each piece is parsed when it arrives; the call's own answer holds the last rows,
// behind a line `C<first>,<n>`: they follow the rows of pieces first .. first + n - 1 of the
// call (earlier pieces belong to a run of the read that died and was run again).

const { MostaError } = require('./errors')

/** How long an answer waits for pieces sent before it (they are normally a tick away). */
const PIECE_WAIT_MS = 60_000

class Pieces {
  constructor() {
    this._last = 0
    this._open = new Map()
  }

  /**
   * A stream id (a nonzero u32) for one call, before the call is made. `decode` turns one
   * JSON text (with its optional date line) into that call's array of rows.
   */
  open(decode) {
    this._last = (this._last + 1) >>> 0 || 1
    const id = this._last
    this._open.set(id, { decode, parts: [], error: undefined, want: -1, ready: undefined })
    return id
  }

  /** A piece from the native side. Pieces of one call arrive in order. */
  receive(id, json) {
    const s = this._open.get(id)
    if (s === undefined) return // the call failed and was discarded
    try {
      s.parts.push(s.decode(json))
    } catch (e) {
      s.error = s.error || e
    }
    if (s.parts.length === s.want || s.error !== undefined) s.ready?.()
  }

  /**
   * All rows of the call `id`, given its answer: its pieces' rows, then the answer's. A
   * Promise when pieces are still on their way (they and the answer travel separately).
   */
  close(id, answer) {
    const s = this._open.get(id)
    if (answer.charCodeAt(0) !== 67 /* C */) {
      this._open.delete(id)
      return s.decode(answer)
    }
    const nl = answer.indexOf('\n')
    const [first, count] = answer.slice(1, nl).split(',').map(Number)
    const want = first + count
    const rest = s.decode(answer.slice(nl + 1))
    const join = () => {
      this._open.delete(id)
      if (s.error !== undefined) throw s.error
      const all = []
      for (const part of s.parts.slice(first, want)) for (const r of part) all.push(r)
      for (const r of rest) all.push(r)
      return all
    }
    if (s.parts.length >= want || s.error !== undefined) return join()
    // The missing pieces are already queued; the receiver does not hold the event loop
    // open (an idle dialect must not keep a process alive), so a timer does until they
    // are in. It fires only if they never come (the addon is being torn down).
    return new Promise((resolve, reject) => {
      const keepAlive = setTimeout(() => {
        this._open.delete(id)
        reject(new MostaError('E_INTERNAL', `${want - s.parts.length} piece(s) of a large answer never arrived`))
      }, PIECE_WAIT_MS)
      s.want = want
      s.ready = () => {
        clearTimeout(keepAlive)
        try {
          resolve(join())
        } catch (e) {
          reject(e)
        }
      }
    })
  }

  /** Forgets a call that failed; pieces still on their way are then dropped. */
  discard(id) {
    this._open.delete(id)
  }
}

module.exports = { Pieces }
