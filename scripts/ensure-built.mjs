// Builds the native addon when it is missing or older than its Rust sources, installing the
// build tool first on a fresh clone. `--release` builds the optimised (LTO) binary.
import { execSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const release = process.argv.includes('--release')
const profile = release ? 'release' : 'debug'
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' })

// `npm install`, not `npm ci`: the per-platform optional packages are published with the
// root package, so a lockfile made before the first publication cannot list them.
if (!existsSync(join(root, 'node_modules', '@napi-rs', 'cli'))) run('npm install --no-audit --no-fund')

function newest(path) {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let m = st.mtimeMs
  for (const e of readdirSync(path)) {
    if (e === 'target' || e === 'node_modules') continue
    m = Math.max(m, newest(join(path, e)))
  }
  return m
}

const addonName = readdirSync(root).find((f) => /^data-plug\..+\.node$/.test(f))
const addon = addonName ? join(root, addonName) : ''
const marker = join(root, 'target', '.mosta-build-profile')
const sources = ['src', 'crates', 'Cargo.toml', 'Cargo.lock', 'build.rs'].map((p) => join(root, p)).filter(existsSync)
const built = addon && existsSync(marker) ? statSync(addon).mtimeMs : 0
const sameProfile = existsSync(marker) && readFileSync(marker, 'utf8') === profile
const stale = !built || !sameProfile || Math.max(...sources.map(newest)) > built

if (stale) {
  run(`npx napi build --platform ${release ? '--release ' : ''}--js native.js --dts native.d.ts`)
  mkdirSync(dirname(marker), { recursive: true })
  writeFileSync(marker, profile)
}
