// index.d.ts: it compiles against typical usage, and declares every runtime export.
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import plug from '../index.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

it('index.d.ts compiles against an app using the documented API', () => {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    execFileSync(process.execPath, [tsc, '-p', join(root, '__test__', 'types')], { encoding: 'utf8' })
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
})

it('every runtime export is declared, and nothing declared is missing at run time', () => {
  const dts = readFileSync(join(root, 'index.d.ts'), 'utf8')
  const declared = new Set([...dts.matchAll(/export declare (?:function|class) (\w+)/g)].map((m) => m[1]))
  const runtime = new Set(Object.keys(plug))
  assert.deepEqual([...runtime].filter((n) => !declared.has(n)).sort(), [], 'exported but not typed')
  assert.deepEqual([...declared].filter((n) => !runtime.has(n)).sort(), [], 'typed but not exported')
  assert.doesNotMatch(dts, /:\s*any\b/, 'no `any` in the public surface')
})
