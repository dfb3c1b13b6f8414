// `npm test`: installs what is missing, builds the addon (debug), then runs the Rust tests,
// the jest example app and, last (CI reads the closing lines), the node:test suites.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const step = (name, cmd, args, cwd = root) => {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit', env: process.env })
  return r.status === 0
}

const failed = []
if (!step('build', 'node', ['scripts/ensure-built.mjs'])) process.exit(1)
if (!step('rust tests', 'cargo', ['test', '--workspace', '--target', 'x86_64-unknown-linux-gnu'])) failed.push('rust tests')
const jestApp = join(root, 'examples', 'jest-app')
if (!existsSync(join(jestApp, 'node_modules', 'jest'))) step('jest example install', 'npm', ['install', '--no-audit', '--no-fund'], jestApp)
if (!step('jest example', 'npm', ['test'], jestApp)) failed.push('jest example')
if (failed.length) console.log(`\nFAILED before node:test: ${failed.join(', ')}`)
const ok = step('node:test', 'node', ['--test', '--test-concurrency=2', '__test__/'])
process.exit(ok && failed.length === 0 ? 0 : 1)
