'use strict'
// Loads the addon through the napi-rs generated loader (native.js at the package root), and
// hands the core a snapshot of `process.env`: native code must not read libc's environment,
// because jest gives every test file its own copy of `process.env`.

const binding = require('../native.js')

const envSnapshot = () => JSON.stringify(process.env)

module.exports = { binding, envSnapshot }
